import Foundation
import Formats

/// Grouped-query causal self-attention with no positional encoding (docs/nemotron-h.md §3.5):
/// no RoPE, no q/k norm, softmax in FP32. Query head i reads kv head i / (nH / nKV).
struct AttentionMixer {
    let dims: AttentionDims
    let hidden: Int
    let layer: Int

    func forward(_ u: UnsafePointer<Float>, batch: Batch, weights w: WeightProvider, scratch: Scratch,
                 observer: ForwardObserver?, into out: UnsafeMutablePointer<Float>) throws {
        let a = dims, rows = batch.rows, T = batch.length
        let qw = a.qRows, kvw = a.kvRows, hd = a.headDim
        let q = scratch.buffer("attn.q", rows * qw), k = scratch.buffer("attn.k", rows * kvw)
        let v = scratch.buffer("attn.v", rows * kvw)
        let wt = scratch.buffer("attn.w", max(qw, kvw) * hidden)
        for (role, dst, n) in [(TensorRole.attnQ, q, qw), (.attnK, k, kvw), (.attnV, v, kvw)] {
            try w.load(role, layer: layer, expert: nil, into: wt.pointer)
            observer?.linearInput(layer: layer, role: role, expert: nil, input: u, rows: rows, width: hidden)
            Linear.forward(u, rows: rows, in: hidden, weight: wt.pointer, out: n, into: dst.pointer)
        }

        let o = scratch.buffer("attn.o", rows * qw)
        let group = a.heads / a.kvHeads
        let scale = 1 / Float(hd).squareRoot()
        let jobs = batch.windows * a.heads
        let scores = scratch.buffer("attn.scores", jobs * T * T)
        let qp = q.pointer, kp = k.pointer, vp = v.pointer, op = o.pointer, sp = scores.pointer
        parallelFor(jobs) { job in
            let b = job / a.heads, h = job % a.heads, kvh = h / group
            let s = sp + job * T * T
            let qh = qp + b * T * qw + h * hd
            let kh = kp + b * T * kvw + kvh * hd
            let vh = vp + b * T * kvw + kvh * hd
            // s = q kᵀ · scale, [T, T]; rows of the upper triangle are ignored below.
            Linear.gemm(transA: false, transB: true, m: T, n: T, k: hd, alpha: scale,
                        a: qh, lda: qw, b: kh, ldb: kvw, c: s, ldc: T)
            for i in 0..<T {
                let row = s + i * T
                var mx = -Float.infinity
                for j in 0...i where row[j] > mx { mx = row[j] }
                var sum: Float = 0
                for j in 0...i { let e = Foundation.exp(row[j] - mx); row[j] = e; sum += e }
                let inv = 1 / sum
                for j in 0...i { row[j] *= inv }
                if i + 1 < T { (row + i + 1).update(repeating: 0, count: T - i - 1) }
            }
            Linear.gemm(transA: false, transB: false, m: T, n: hd, k: T,
                        a: s, lda: T, b: vh, ldb: kvw, c: op + b * T * qw + h * hd, ldc: qw)
        }

        let wo = scratch.buffer("attn.w_o", hidden * qw)
        try w.load(.attnO, layer: layer, expert: nil, into: wo.pointer)
        observer?.linearInput(layer: layer, role: .attnO, expert: nil, input: op, rows: rows, width: qw)
        Linear.forward(op, rows: rows, in: qw, weight: wo.pointer, out: hidden, into: out)
    }
}
