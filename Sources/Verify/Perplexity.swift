import Model
import Formats

/// Result of a perplexity run, with the figures `--json` reports.
public struct PerplexityResult: Sendable {
    public var ppl: Double
    public var nllMean: Double
    public var tokensScored: Int
    public var windows: Int
    public var ctx: Int
    public var seconds: Double
    public var tokensPerSecond: Double
    public var peakRSSBytes: Int
}

/// Progress of a layer-streamed evaluation: batch `batch` of `batches`, layer `layer` of `layers`.
public struct EvaluationProgress: Sendable {
    public var batch: Int, batches: Int, layer: Int, layers: Int
    public var fraction: Double { (Double(batch) + Double(layer) / Double(max(1, layers))) / Double(max(1, batches)) }
}

public enum Perplexity {
    /// Runs every batch of windows through the model layer by layer, then calls `body` once per
    /// window with its logits [ctx, vocab] (valid only during the call).
    public static func forEachWindowLogits(
        model: HybridModel, windows: EvaluationWindows, batchSize: Int,
        observer: ForwardObserver? = nil, progress: ((EvaluationProgress) -> Void)? = nil,
        _ body: (_ window: Int, _ logits: UnsafePointer<Float>) throws -> Void
    ) throws {
        let cfg = model.config, T = windows.ctx, V = cfg.vocabSize, H = cfg.hiddenSize
        let batches = windows.batches(of: batchSize)
        let logits = FloatBuffer(count: T * V)
        var head: FloatBuffer?
        for (bi, range) in batches.enumerated() {
            let batch = Batch(windows: range.count, length: T)
            let x = try model.hiddenStates(windows.tokens(range), batch: batch, observer: observer) { l in
                progress?(EvaluationProgress(batch: bi, batches: batches.count, layer: l + 1, layers: cfg.layers.count))
            }
            // lm_head is the largest single matrix of a real model; keep it only while logits run.
            if head == nil { head = try model.loadHead() }
            for w in 0..<range.count {
                model.logits(x.pointer + w * T * H, rows: T, head: head!, into: logits.pointer)
                try body(range.lowerBound + w, logits.pointer)
            }
            if bi + 1 < batches.count { head = nil }
        }
    }

    /// Mean negative log-likelihood of every token but the first of each window.
    public static func evaluate(model: HybridModel, windows: EvaluationWindows, batchSize: Int = 8,
                                progress: ((EvaluationProgress) -> Void)? = nil) throws -> PerplexityResult {
        let start = ResourceUsage.now()
        let V = model.config.vocabSize, T = windows.ctx
        var total = 0.0
        try forEachWindowLogits(model: model, windows: windows, batchSize: batchSize, progress: progress) { w, logits in
            let base = w * T
            for t in 0..<(T - 1) {
                let row = logits + t * V
                let target = Int(windows.tokens[base + t + 1])
                let nll = Double(Kernels.logSumExp(row, count: V) - row[target])
                // A NaN or ±∞ logit anywhere in the row makes the log-sum-exp NaN or ∞.
                guard nll.isFinite else {
                    throw NonFiniteResult(model: nil, window: w, token: t, quantity: "negative log-likelihood", value: nll)
                }
                total += nll
            }
        }
        let seconds = ResourceUsage.now() - start
        let n = windows.tokensScored
        let nll = total / Double(max(1, n))
        return PerplexityResult(ppl: exp(nll), nllMean: nll, tokensScored: n, windows: windows.count, ctx: T,
                                seconds: seconds, tokensPerSecond: Double(windows.count * T) / seconds,
                                peakRSSBytes: ResourceUsage.peakRSSBytes())
    }
}

#if canImport(Glibc)
import Glibc
#endif
