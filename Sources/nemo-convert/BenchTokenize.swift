import ArgumentParser

struct BenchTokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenizer throughput (in progress).")

    func run() throws { throw ValidationError("'tokenize' is not implemented yet") }
}
