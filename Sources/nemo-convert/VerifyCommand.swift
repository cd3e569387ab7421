import ArgumentParser

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Compare a quantized model against the original (in progress).")

    func run() throws { throw ValidationError("'verify' is not implemented yet") }
}
