import Model
import Formats

/// Two models that cannot be compared token by token.
public struct VerifyError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Runs an original and a quantized model over the same windows, in lockstep layer by layer, and
/// compares them (`nemo-convert verify`).
///
/// Each batch of windows is embedded by both models; then layer l runs in the original and in
/// the quantized model before either runs layer l + 1. Only one layer of each model is resident
/// in FP32 at a time, and both residual streams exist side by side after every layer, which is
/// what the per-layer error is measured on. Logits then come window by window from both heads.
///
/// Perplexity of each model is accumulated exactly as `Perplexity.evaluate` does (same batches,
/// same kernels, same summation order), so it equals what `nemo-convert perplexity` reports.
public enum Verification {
    public static func run(original: HybridModel, quantized: HybridModel, windows: EvaluationWindows,
                           batchSize: Int, measureExperts: Bool = true,
                           progress: ((EvaluationProgress) -> Void)? = nil) throws -> VerifyReport {
        try checkComparable(original.config, quantized.config)
        let start = ResourceUsage.now()
        let cfg = original.config, T = windows.ctx, V = cfg.vocabSize, H = cfg.hiddenSize, L = cfg.layers.count

        let probe = ExpertProbe(original: original.weights, quantized: quantized.weights, measureExperts: measureExperts)
        let quantRouting = RoutingCapture()
        var drift = [RelativeError](repeating: RelativeError(), count: L)
        var routeSame = [Int](repeating: 0, count: L), routeTotal = [Int](repeating: 0, count: L)

        var nllO = 0.0, nllQ = 0.0, sameTop1 = 0
        var kl: [Double] = []
        kl.reserveCapacity(windows.tokensScored)
        let xo = FloatBuffer(count: 0), xq = FloatBuffer(count: 0)
        let lo = FloatBuffer(count: T * V), lq = FloatBuffer(count: T * V), work = FloatBuffer(count: 2 * V)

        let batches = windows.batches(of: batchSize)
        for (bi, range) in batches.enumerated() {
            let batch = Batch(windows: range.count, length: T)
            let tokens = windows.tokens(range)
            try original.embed(tokens, batch: batch, into: xo)
            try quantized.embed(tokens, batch: batch, into: xq)
            for l in 0..<L {
                try original.runLayer(l, xo, batch: batch, observer: probe)
                try probe.rethrow()
                try quantized.runLayer(l, xq, batch: batch, observer: quantRouting)
                drift[l].add(reference: xo.pointer, test: xq.pointer, count: batch.rows * H, rows: batch.rows)
                if cfg.layers[l] == .moe {
                    let (s, t) = quantRouting.overlap(with: probe.routed)
                    routeSame[l] += s; routeTotal[l] += t
                }
                progress?(EvaluationProgress(batch: bi, batches: batches.count, layer: l + 1, layers: L))
            }
            try original.finalNorm(xo, batch: batch)
            try quantized.finalNorm(xq, batch: batch)

            // Both heads only while logits run, as in Perplexity: the largest matrices of a real
            // model are not kept next to the next batch's layers.
            let headO = try original.loadHead(), headQ = try quantized.loadHead()
            for w in 0..<range.count {
                original.logits(xo.pointer + w * T * H, rows: T, head: headO, into: lo.pointer)
                quantized.logits(xq.pointer + w * T * H, rows: T, head: headQ, into: lq.pointer)
                let base = (range.lowerBound + w) * T
                for t in 0..<(T - 1) {
                    let ro = lo.pointer + t * V, rq = lq.pointer + t * V
                    let target = Int(windows.tokens[base + t + 1])
                    let o = Double(Kernels.logSumExp(ro, count: V) - ro[target])
                    let q = Double(Kernels.logSumExp(rq, count: V) - rq[target])
                    // A non-finite logit anywhere in a row makes its log-sum-exp non-finite; the
                    // KL of such rows would otherwise be clamped, summarized and compared.
                    for (model, v) in [("original", o), ("quantized", q)] where !v.isFinite {
                        throw NonFiniteResult(model: model, window: range.lowerBound + w, token: t,
                                              quantity: "negative log-likelihood", value: v)
                    }
                    let k = LogitComparison.klDivergence(ro, rq, count: V, work: work.pointer)
                    guard k.isFinite else {
                        throw NonFiniteResult(model: "quantized", window: range.lowerBound + w, token: t, quantity: "KL divergence", value: k)
                    }
                    nllO += o
                    nllQ += q
                    kl.append(k)
                    if LogitComparison.argmax(ro, count: V) == LogitComparison.argmax(rq, count: V) { sameTop1 += 1 }
                }
            }
            withExtendedLifetime((headO, headQ)) {}
        }

        let n = windows.tokensScored
        var layers: [VerifyReport.LayerError] = []
        for l in 0..<L {
            var e = VerifyReport.LayerError(index: l, kind: cfg.layers[l], relError: drift[l].value, routingAgreement: nil, experts: [])
            if cfg.layers[l] == .moe {
                e.routingAgreement = routeTotal[l] > 0 ? Double(routeSame[l]) / Double(routeTotal[l]) : nil
                if measureExperts, let d = cfg.moe {
                    let per = probe.experts[l] ?? [], routed = probe.routedTokens[l] ?? []
                    e.experts = (0..<d.experts).map { i in
                        let r = i < per.count ? per[i] : RelativeError()
                        return VerifyReport.ExpertError(index: i, tokens: i < routed.count ? routed[i] : 0, measuredTokens: r.rows,
                                                        relError: r.rows > 0 ? r.value : nil)
                    }
                }
            }
            layers.append(e)
        }
        let seconds = ResourceUsage.now() - start
        let nO = nllO / Double(max(1, n)), nQ = nllQ / Double(max(1, n))
        return VerifyReport(original: .init(ppl: exp(nO), nllMean: nO), quantized: .init(ppl: exp(nQ), nllMean: nQ),
                            kld: ValueSummary(kl), top1Agreement: Double(sameTop1) / Double(max(1, n)),
                            tokensScored: n, windows: windows.count, ctx: T, layers: layers, seconds: seconds,
                            tokensPerSecond: Double(windows.count * T) / seconds,
                            peakRSSBytes: ResourceUsage.peakRSSBytes())
    }

    /// The quantized model must be the original's architecture: same layer pattern, hidden size
    /// and vocabulary (token ids and logits are compared one to one). Mamba's Δ clamp and scan
    /// chunk size may differ: they are how a runtime computes, not what it computes with (a GGUF
    /// file from elsewhere carries neither, and llama.cpp applies no clamp), so each model runs
    /// with its own and the difference shows in the comparison.
    static func checkComparable(_ a: ModelConfig, _ b: ModelConfig) throws {
        var bm = b.mamba
        if let am = a.mamba { bm?.chunkSize = am.chunkSize; bm?.timeStepLimit = am.timeStepLimit }
        if a.pattern != b.pattern {
            throw VerifyError("the models have different layer patterns: original \(a.pattern), quantized \(b.pattern)")
        }
        if a.hiddenSize != b.hiddenSize {
            throw VerifyError("the models have different hidden sizes: original \(a.hiddenSize), quantized \(b.hiddenSize)")
        }
        if a.vocabSize != b.vocabSize {
            throw VerifyError("the models have different vocabularies: original \(a.vocabSize) tokens, quantized \(b.vocabSize)")
        }
        if a.moe != b.moe || a.mamba != bm || a.attention != b.attention || a.mlp != b.mlp {
            throw VerifyError("the models have the same layer pattern but different layer dimensions (config.json differs)")
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
