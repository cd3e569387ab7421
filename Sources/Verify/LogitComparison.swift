import Foundation

/// Per-token comparison of two next-token distributions given as logits: the KL divergence of
/// the second from the first, and whether both put their highest logit on the same token.
public enum LogitComparison {
    /// KL(P ‖ Q) in nats, with P = softmax(p) and Q = softmax(q) over `n` logits. `work` holds `n`
    /// floats of scratch.
    ///
    /// Written as KL = log Σᵢ Pᵢ·exp(dᵢ − μ), with d = q − p and μ = Σᵢ Pᵢ dᵢ, and evaluated as
    /// log1p(Σᵢ Pᵢ·expm1(dᵢ − μ)). The textbook Σ P (log P − log Q) subtracts two log-sum-exps of
    /// about 10 that agree to 1e-6 in Float: for an INT8 model, whose KL is around 1e-5, that
    /// would be mostly rounding. Here identical logits give exactly 0, and a small KL keeps its
    /// digits because nothing large is subtracted.
    public static func klDivergence(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, count n: Int,
                                    work w: UnsafeMutablePointer<Float>) -> Double {
        guard n > 0 else { return 0 }
        var m = -Float.infinity
        for i in 0..<n where p[i] > m { m = p[i] }
        // Unnormalized P and its sum; the normalization divides out below, so Float rounding of
        // the max-shifted exponentials only scales every weight alike.
        var z = 0.0, dot = 0.0
        for i in 0..<n {
            let e = Foundation.exp(p[i] - m)
            w[i] = e
            z += Double(e)
            dot += Double(e) * Double(q[i] - p[i])
        }
        let mu = dot / z
        var s = 0.0
        for i in 0..<n where w[i] > 0 {
            // expm1 in Float: its relative error (1e-7) applies to terms that are already small.
            s += Double(w[i]) * Double(Foundation.expm1(Float(Double(q[i] - p[i]) - mu)))
        }
        // Rounding can leave a tiny negative sum for near-identical distributions; KL is ≥ 0.
        return max(0, Foundation.log1p(s / z))
    }

    /// Index of the largest logit; the lowest index wins a tie (as torch.argmax does).
    public static func argmax(_ x: UnsafePointer<Float>, count n: Int) -> Int {
        var best = 0
        var bv = -Float.infinity
        for i in 0..<n where x[i] > bv { bv = x[i]; best = i }
        return best
    }
}
