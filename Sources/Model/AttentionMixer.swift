import Foundation
import Formats

/// Grouped-query causal self-attention with no positional encoding (docs/nemotron-h.md §3.5):
/// no RoPE, no q/k norm, softmax in FP32. Query head i reads kv head i / (nH / nKV).
struct AttentionMixer {
    /// Query rows per block of the causal product: large enough for sgemm to run near its peak
    /// (m = 128 against k = head_dim), small enough that the wasted upper-triangle corner of the
    /// last block is a small share at real context lengths.
    static let queryBlock = 128

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
            if role != .attnQ { observer?.linearOutput(layer: layer, role: role, output: dst.pointer, rows: rows, width: n) }
        }

        let o = scratch.buffer("attn.o", rows * qw)
        let group = a.heads / a.kvHeads
        let scale = 1 / Float(hd).squareRoot()
        let jobs = batch.windows * a.heads
        // Causal attention in blocks of query rows: block [i0, i1) needs keys 0..<i1 only, so the
        // upper triangle is mostly never computed (about half the score and P·V products), and
        // each worker needs one block × T score buffer instead of every head's T × T at once
        // (which at ctx 4096, 32 heads and 8 windows would be 17 GB).
        let block = min(T, AttentionMixer.queryBlock)
        let workers = min(jobs, Threads.count)
        let scores = scratch.buffer("attn.scores", workers * block * T)
        let qp = q.pointer, kp = k.pointer, vp = v.pointer, op = o.pointer, sp = scores.pointer
        parallelFor(workers) { worker in
            let s = sp + worker * block * T
            var job = worker
            while job < jobs {
                let b = job / a.heads, h = job % a.heads, kvh = h / group
                let qh = qp + b * T * qw + h * hd
                let kh = kp + b * T * kvw + kvh * hd
                let vh = vp + b * T * kvw + kvh * hd
                var i0 = 0
                while i0 < T {
                    let i1 = min(T, i0 + block), m = i1 - i0
                    // s = q kᵀ · scale for rows i0..<i1 against keys 0..<i1, [m, i1].
                    Linear.gemm(transA: false, transB: true, m: m, n: i1, k: hd, alpha: scale,
                                a: qh + i0 * qw, lda: qw, b: kh, ldb: kvw, c: s, ldc: i1)
                    for r in 0..<m {
                        let i = i0 + r, row = s + r * i1
                        var mx = -Float.infinity
                        for j in 0...i where row[j] > mx { mx = row[j] }
                        var sum: Float = 0
                        for j in 0...i { let e = Foundation.exp(row[j] - mx); row[j] = e; sum += e }
                        let inv = 1 / sum
                        for j in 0...i { row[j] *= inv }
                        if i + 1 < i1 { (row + i + 1).update(repeating: 0, count: i1 - i - 1) }
                    }
                    Linear.gemm(transA: false, transB: false, m: m, n: hd, k: i1,
                                a: s, lda: i1, b: vh, ldb: kvw, c: op + (b * T + i0) * qw + h * hd, ldc: qw)
                    i0 = i1
                }
                job += workers
            }
        }

        let wo = scratch.buffer("attn.w_o", hidden * qw)
        try w.load(.attnO, layer: layer, expert: nil, into: wo.pointer)
        observer?.linearInput(layer: layer, role: .attnO, expert: nil, input: op, rows: rows, width: qw)
        Linear.forward(op, rows: rows, in: qw, weight: wo.pointer, out: hidden, into: out)
    }
}
