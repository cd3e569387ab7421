import ArgumentParser
import Calibrate
import Model
import Formats
import Verify

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a model on a text, with the fixtures' reference protocol.",
        discussion: """
        The text is tokenized whole without special tokens and cut into consecutive windows of --ctx \
        tokens (no overlap, trailing partial window dropped). Each window starts from an empty state and \
        every token but its first is scored; ppl = exp(mean negative log-likelihood). Windows run through \
        the model one layer at a time in batches of --batch, so only one layer's weights are in memory.
        """)

    @Argument(help: "A model directory, a .safetensors file, or a packed file.")
    var model: String

    @OptionGroup var evaluation: EvaluationOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        do {
            evaluation.applyThreads()
            let input = try ModelInput(path: model)
            let tok = try input.tokenizer(override: evaluation.tokenizer)
            let windows = try evaluation.windows(tokenizer: tok)
            let bar = ProgressLine(quiet: json)
            let r = try Perplexity.evaluate(model: HybridModel(weights: input.weights), windows: windows, batchSize: evaluation.batch) { p in
                bar.update("perplexity: batch \(p.batch + 1)/\(p.batches), layer \(p.layer)/\(p.layers)  \(Int(p.fraction * 100))%")
            }
            bar.finish()
            if json {
                let o: JSONValue = [
                    "ppl": .number(r.ppl), "nll_mean": .number(r.nllMean), "tokens_scored": .int(r.tokensScored),
                    "windows": .int(r.windows), "ctx": .int(r.ctx), "seconds": .number(r.seconds),
                    "tokens_per_second": .number(r.tokensPerSecond), "peak_rss_bytes": .int(r.peakRSSBytes),
                ]
                print(JSONWriter.string(o))
            } else {
                print("perplexity  \(String(format: "%.4f", r.ppl))")
                print("nll mean    \(String(format: "%.6f", r.nllMean))")
                print("scored      \(r.tokensScored) tokens in \(r.windows) windows of \(r.ctx)")
                print("speed       \(String(format: "%.0f", r.tokensPerSecond)) tokens/s (\(String(format: "%.2f", r.seconds)) s)")
                print("peak RSS    \(r.peakRSSBytes / 1_048_576) MiB")
            }
        } catch let e as ValidationError {
            throw e
        } catch let e as NonFiniteResult {
            // The model file is the cause: bad input, never a perplexity.
            var err = StandardError()
            print("error: \(model): \(e)", to: &err)
            Exit.badInput.exitProcess()
        } catch { fail(error) }
    }
}

import Foundation
