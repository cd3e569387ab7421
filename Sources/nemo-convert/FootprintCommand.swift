import ArgumentParser

struct FootprintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "footprint",
        abstract: "Memory footprint on consumer GPUs and CPUs (in progress).")

    func run() throws { throw ValidationError("'footprint' is not implemented yet") }
}
