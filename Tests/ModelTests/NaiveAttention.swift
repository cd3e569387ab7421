import Foundation

/// Causal GQA attention with no positional encoding, written as docs/nemotron-h.md §3.5 states it,
/// in Double, one query at a time over its keys 0...i — the reference for AttentionMixer's
/// blocked products.
struct NaiveAttention {
    let hidden: Int, heads: Int, kvHeads: Int, headDim: Int

    /// u [T, hidden] of one window; weights [out, in] as stored. Returns [T, hidden].
    func forward(_ u: [Float], T: Int, q wq: [Float], k wk: [Float], v wv: [Float], o wo: [Float]) -> [Double] {
        let hd = headDim, qw = heads * hd, kvw = kvHeads * hd
        func project(_ w: [Float], _ rows: Int) -> [[Double]] {
            (0..<T).map { t in
                (0..<rows).map { o in (0..<hidden).reduce(0.0) { $0 + Double(w[o * hidden + $1]) * Double(u[t * hidden + $1]) } }
            }
        }
        let q = project(wq, qw), k = project(wk, kvw), v = project(wv, kvw)
        var attn = [[Double]](repeating: [Double](repeating: 0, count: qw), count: T)
        for h in 0..<heads {
            let kvh = h / (heads / kvHeads)
            for i in 0..<T {
                let scores = (0...i).map { j in
                    (0..<hd).reduce(0.0) { $0 + q[i][h * hd + $1] * k[j][kvh * hd + $1] } / Double(hd).squareRoot()
                }
                let mx = scores.max()!
                let e = scores.map { exp($0 - mx) }
                let sum = e.reduce(0, +)
                for d in 0..<hd {
                    attn[i][h * hd + d] = (0...i).reduce(0.0) { $0 + e[$1] / sum * v[$1][kvh * hd + d] }
                }
            }
        }
        var out = [Double](repeating: 0, count: T * hidden)
        for t in 0..<T {
            for o in 0..<hidden {
                out[t * hidden + o] = (0..<qw).reduce(0.0) { $0 + Double(wo[o * qw + $1]) * attn[t][$1] }
            }
        }
        return out
    }
}
