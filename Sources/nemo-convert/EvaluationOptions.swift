import ArgumentParser
import Model
import Tokenizer
import Verify

/// The options of every command that runs text through the model and scores it (`perplexity`,
/// `verify`): one declaration, so their spelling, defaults, help and limits cannot drift apart.
struct EvaluationOptions: ParsableArguments {
    @Option(help: "UTF-8 text to evaluate on.")
    var text: String

    @Option(help: "Tokens per window.")
    var ctx = 256

    @Option(help: "Evaluate at most this many windows.")
    var maxWindows: Int?

    @Option(help: "Windows evaluated together, layer by layer.")
    var batch = 8

    @Option(help: "Threads for matrix products and kernels (default: all cores).")
    var threads: Int?

    @Option(help: "tokenizer.json to use instead of the model's own.")
    var tokenizer: String?

    func validate() throws {
        guard ctx >= 2 else { throw ValidationError("--ctx must be at least 2") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if let m = maxWindows, m < 1 { throw ValidationError("--max-windows must be at least 1") }
    }

    /// --text tokenized whole without special tokens and cut into windows of --ctx (at most
    /// --max-windows); a text shorter than one window is bad input naming the file.
    func windows(tokenizer: Tokenizer) throws -> EvaluationWindows {
        let ids = try tokenizer.encode(try readText(text), addSpecialTokens: false)
        let w = EvaluationWindows(tokens: ids, ctx: ctx, maxWindows: maxWindows)
        guard w.count > 0 else { throw tooShort(text, tokens: ids.count, ctx: ctx) }
        return w
    }

    /// Sets the kernels' thread count (all cores unless --threads says otherwise).
    func applyThreads() { Threads.set(threads ?? Threads.count) }
}
