import ArgumentParser

struct BenchConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Conversion throughput on a synthetic checkpoint (in progress).")

    func run() throws { throw ValidationError("'convert' is not implemented yet") }
}
