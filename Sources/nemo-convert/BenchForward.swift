import ArgumentParser

struct BenchForward: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Prefill throughput of the reference forward pass (in progress).")

    func run() throws { throw ValidationError("'forward' is not implemented yet") }
}
