import ArgumentParser
import Calibrate
import Model
import Formats
import Verify

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Compare a quantized model against the original: perplexity, KL divergence, top-1, per-layer error.",
        discussion: """
        Both models run over the same windows of --text (the perplexity protocol: --ctx tokens, no \
        overlap, each from an empty state, every token but the first scored), in lockstep layer by \
        layer, so neither is ever resident in FP32 and the residual streams can be compared after \
        every layer. Reports each model's perplexity (equal to what `perplexity` gives for it) and \
        their ratio; KL(original ‖ quantized) of the next-token distributions per scored token (mean, \
        median, p99, max, in nats); how often both pick the same most likely token; the relative \
        error ‖x_q − x_o‖/‖x_o‖ of the residual stream after each layer; for MoE layers how often the \
        routers agree and each routed expert's own output error on the tokens the original sends it. \
        --max-kld (on the mean), --min-top1 (a fraction) and --max-ppl-ratio make verify exit with \
        code 3 when a limit fails.
        """)

    @Argument(help: "The original model: a directory, a .safetensors file or a packed file.")
    var original: String

    @Argument(help: "The quantized model: usually a packed file written by `convert`.")
    var quantized: String

    @OptionGroup var evaluation: EvaluationOptions

    @Option(help: "Fail (exit 3) when the mean KL divergence per token exceeds this (nats).")
    var maxKld: Double?

    @Option(help: "Fail (exit 3) when top-1 agreement is below this fraction (e.g. 0.975).")
    var minTop1: Double?

    @Option(help: "Fail (exit 3) when ppl(quantized) / ppl(original) exceeds this.")
    var maxPplRatio: Double?

    @Option(help: "Write per-layer and per-expert error as an SVG file.")
    var plot: String?

    @Flag(help: "Skip the per-expert error of MoE layers (saves one extra pass over each routed expert).")
    var noExpertErrors = false

    @Flag(help: "Verify even when ORIGINAL's tensor data differ from those QUANTIZED was converted from (normally exit 65).")
    var allowDifferentSource = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        if let k = maxKld, !(k >= 0) { throw ValidationError("--max-kld must be a non-negative number of nats") }
        if let t = minTop1, !(0...1).contains(t) { throw ValidationError("--min-top1 is a fraction between 0 and 1 (0.975 = 97.5 %)") }
        if let r = maxPplRatio, !(r > 0) { throw ValidationError("--max-ppl-ratio must be positive") }
    }

    var thresholds: VerifyThresholds { VerifyThresholds(maxKLD: maxKld, minTop1: minTop1, maxPPLRatio: maxPplRatio) }

    func run() throws {
        let report: VerifyReport
        var source: SourceCheck.Result?
        do {
            evaluation.applyThreads()
            TemporaryFiles.installSignalHandlers()
            let a = try ModelInput(path: original), b = try ModelInput(path: quantized)
            if let p = plot {
                var inputs = a.files.map { (what: "ORIGINAL's", path: $0) } + b.files.map { (what: "QUANTIZED's", path: $0) }
                inputs.append(("--text", evaluation.text))
                if let t = evaluation.tokenizer { inputs.append(("--tokenizer", t)) }
                try OutputPath.check(outputs: [("--plot", p)], inputs: inputs)
            }
            if let pk = b.packed, let ck = a.checkpoint {
                source = SourceCheck.compare(packed: pk.file, original: try TensorMap(checkpoint: ck))
                if let sc = source, !sc.matches {
                    let msg = "\(original) is not the checkpoint \(quantized) was converted from: \(sc.differing.count) of \(sc.compared) tensors differ "
                        + "(first: '\(sc.differing[0])'); the comparison would measure the difference between two models, not quantization"
                    guard allowDifferentSource else {
                        throw VerifyError(msg + " (--allow-different-source compares them anyway)")
                    }
                    var err = StandardError()
                    print("warning: \(msg)", to: &err)
                }
            }
            // Token ids must be the same for both: one tokenizer, the original's if it has one.
            let tok = try (try? a.tokenizer(override: evaluation.tokenizer)) ?? b.tokenizer(override: evaluation.tokenizer)
            let windows = try evaluation.windows(tokenizer: tok)
            let bar = ProgressLine(quiet: json)
            do {
                report = try Verification.run(original: HybridModel(weights: a.weights), quantized: HybridModel(weights: b.weights),
                                              windows: windows, batchSize: evaluation.batch, measureExperts: !noExpertErrors) { p in
                    bar.update("verify: batch \(p.batch + 1)/\(p.batches), layer \(p.layer)/\(p.layers)  \(Int(p.fraction * 100))%")
                }
            } catch let e as NonFiniteResult {
                // The model file is the cause: bad input, and no threshold can pass on it.
                var err = StandardError()
                print("error: \(e.model == "original" ? original : quantized): \(e)", to: &err)
                Exit.badInput.exitProcess()
            } catch let e as VerifyError {
                // Models that cannot be compared are inconsistent input, like a corrupt file.
                var err = StandardError()
                print("error: \(original) vs \(quantized): \(e.description)", to: &err)
                Exit.badInput.exitProcess()
            }
            bar.finish()
        } catch let e as ValidationError { throw e } catch { fail(error) }

        if let p = plot {
            do { try ErrorPlot.write(report, title: "\(tail(quantized)) vs \(tail(original))", to: p) } catch {
                var err = StandardError()
                print("error: \(error)", to: &err)
                Exit.outputFailed.exitProcess()
            }
        }
        let failures = thresholds.failures(report)
        if json {
            guard case var .object(o) = report.json else { return }
            o["original"] = ["path": .string(original), "ppl": .number(report.original.ppl), "nll_mean": .number(report.original.nllMean)]
            o["quantized"] = ["path": .string(quantized), "ppl": .number(report.quantized.ppl), "nll_mean": .number(report.quantized.nllMean)]
            o["thresholds"] = thresholds.json
            o["source_check"] = source.map { ["compared": .int($0.compared), "differing": .int($0.differing.count), "matches": .bool($0.matches)] } ?? .null
            o["passed"] = .bool(failures.isEmpty)
            o["failures"] = .array(failures.map { .string($0) })
            print(JSONWriter.string(.object(o)))
        } else {
            printTable(report, failures: failures)
        }
        if !failures.isEmpty {
            var err = StandardError()
            for f in failures { print("error: threshold failed: \(f)", to: &err) }
            Exit.thresholdFailed.exitProcess()
        }
    }

    private func tail(_ path: String) -> String {
        String(path.split(separator: "/", omittingEmptySubsequences: true).last ?? Substring(path))
    }

    private func printTable(_ r: VerifyReport, failures: [String]) {
        func f(_ v: Double, _ spec: String) -> String { String(format: spec, v) }
        print("original    \(original)")
        print("quantized   \(quantized)")
        print("")
        print("                 \(pad("original", 12))\(pad("quantized", 12))")
        print("perplexity       \(pad(f(r.original.ppl, "%.4f"), 12))\(pad(f(r.quantized.ppl, "%.4f"), 12))ratio \(f(r.pplRatio, "%.4f")) (\(f((r.pplRatio - 1) * 100, "%+.2f"))%)")
        print("nll mean         \(pad(f(r.original.nllMean, "%.6f"), 12))\(pad(f(r.quantized.nllMean, "%.6f"), 12))")
        print("KL divergence    mean \(f(r.kld.mean, "%.6f"))  median \(f(r.kld.median, "%.6f"))  p99 \(f(r.kld.p99, "%.5f"))  max \(f(r.kld.max, "%.4f"))  (nats/token)")
        print("top-1 agreement  \(f(r.top1Agreement * 100, "%.2f"))%")
        print("scored           \(r.tokensScored) tokens in \(r.windows) windows of \(r.ctx)")
        print("speed            \(f(r.tokensPerSecond, "%.0f")) tokens/s through both models (\(f(r.seconds, "%.2f")) s), peak RSS \(r.peakRSSBytes / 1_048_576) MiB")
        if !thresholds.isEmpty {
            print("thresholds       " + (failures.isEmpty ? "passed" : "FAILED: " + failures.joined(separator: "; ")))
        }
        print("")

        let hasMoE = r.layers.contains { $0.kind == .moe }
        print("layer  kind       rel error" + (hasMoE ? "  routing  worst expert             " : "  ") + "  ")
        let top = r.layers.map(\.relError).filter { $0.isFinite }.max() ?? 0
        for l in r.layers {
            var line = "\(pad(String(l.index), 5, right: true))  \(pad(l.kind.name, 9))  \(pad(f(l.relError, "%.6f"), 9, right: true))"
            if hasMoE {
                let route = l.routingAgreement.map { f($0 * 100, "%.1f") + "%" } ?? ""
                var worst = ""
                if let w = l.experts.filter({ $0.relError != nil }).max(by: { $0.relError! < $1.relError! }) {
                    worst = "#\(w.index) \(f(w.relError!, "%.4f")) (\(w.tokens) tok)"
                }
                line += "  \(pad(route, 7, right: true))  \(pad(worst, 23))"
            }
            line += "  " + bar(l.relError, max: top, width: 24)
            print(line)
        }
        if let p = plot { print("\nplot written to \(p)") }
    }

    private func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
        let k = s.count
        if k >= n { return s }
        return right ? String(repeating: " ", count: n - k) + s : s + String(repeating: " ", count: n - k)
    }

    /// A horizontal bar in eighths of a character cell.
    private func bar(_ v: Double, max m: Double, width: Int) -> String {
        guard m > 0, v.isFinite else { return "" }
        let eighths = Int((min(1, v / m) * Double(width * 8)).rounded())
        let blocks = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        return String(repeating: "█", count: eighths / 8) + blocks[eighths % 8]
    }
}
