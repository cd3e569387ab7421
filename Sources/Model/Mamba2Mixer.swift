import Foundation
import Formats

/// The Mamba-2 mixer of docs/nemotron-h.md §3.3, in FP32, as a plain recurrence.
///
/// The recurrence and HF's chunked SSD compute the same function (§4); the recurrence is
/// O(T·Hm·P·N), a few percent of the in_proj/out_proj FLOPs at real sizes, and has no padding.
struct Mamba2Mixer {
    let dims: MambaDims
    let hidden: Int
    let eps: Float
    let layer: Int

    func forward(_ u: UnsafePointer<Float>, batch: Batch, weights w: WeightProvider, scratch: Scratch,
                 observer: ForwardObserver?, into out: UnsafeMutablePointer<Float>) throws {
        let m = dims, rows = batch.rows, T = batch.length
        let I = m.innerSize, G = m.groups, N = m.stateSize, Hm = m.heads, P = m.headDim, K = m.convKernel
        let R = m.inProjRows, C = m.convDim, gn = G * N

        // 1. in_proj over every token of every window.
        let wIn = scratch.buffer("mamba.w_in", R * hidden)
        try w.load(.mambaInProj, layer: layer, expert: nil, into: wIn.pointer)
        observer?.linearInput(layer: layer, role: .mambaInProj, expert: nil, input: u, rows: rows, width: hidden)
        let zx = scratch.buffer("mamba.zxbcdt", rows * R)
        Linear.forward(u, rows: rows, in: hidden, weight: wIn.pointer, out: R, into: zx.pointer)

        // Small per-layer tensors.
        let convW = scratch.buffer("mamba.conv_w", C * K)
        try w.load(.mambaConvWeight, layer: layer, expert: nil, into: convW.pointer)
        let convT = scratch.buffer("mamba.conv_wT", K * C)      // [K, C] so the inner loop runs over channels
        for c in 0..<C { for k in 0..<K { convT[k * C + c] = convW[c * K + k] } }
        let convB = scratch.buffer("mamba.conv_b", C)
        if m.convBias { try w.load(.mambaConvBias, layer: layer, expert: nil, into: convB.pointer) } else { convB.zero() }
        let aLog = scratch.buffer("mamba.a_log", Hm), dSkip = scratch.buffer("mamba.d", Hm), dtBias = scratch.buffer("mamba.dt_bias", Hm)
        try w.load(.mambaALog, layer: layer, expert: nil, into: aLog.pointer)
        try w.load(.mambaD, layer: layer, expert: nil, into: dSkip.pointer)
        try w.load(.mambaDtBias, layer: layer, expert: nil, into: dtBias.pointer)
        let normW = scratch.buffer("mamba.norm", I)
        try w.load(.mambaNorm, layer: layer, expert: nil, into: normW.pointer)

        // 2. Causal depthwise conv over xBC, then SiLU.
        let xbc = scratch.buffer("mamba.xbc", rows * C)
        let zxp = zx.pointer, xp = xbc.pointer, ct = convT.pointer, cb = convB.pointer
        // Rows are independent (each reads its K−1 predecessors' pre-conv values), and SiLU's
        // exp makes this the costliest elementwise pass, so it runs on every thread.
        parallelFor(rows) { r in
            let b = r / T, t = r % T
            let dst = xp + r * C
            dst.update(from: cb, count: C)
            for k in 0..<K {
                let tt = t - (K - 1) + k
                if tt < 0 { continue }
                let src = zxp + (b * T + tt) * R + I
                let wk = ct + k * C
                for c in 0..<C { dst[c] += wk[c] * src[c] }
            }
            for c in 0..<C { dst[c] = Kernels.silu(dst[c]) }
        }

        // 3. Δ = softplus(dt + dt_bias), clamped to time_step_limit.
        let dt = scratch.buffer("mamba.dt", rows * Hm)
        let (lo, hi) = m.timeStepLimit
        for r in 0..<rows {
            let src = zxp + r * R + 2 * I + 2 * gn
            for h in 0..<Hm { dt[r * Hm + h] = min(max(Kernels.softplus(src[h] + dtBias[h]), lo), hi) }
        }

        // 4. Selective scan, per window and head (every element of y is written there).
        let y = scratch.buffer("mamba.y", rows * I)
        let yp = y.pointer, dtp = dt.pointer
        let jobs = batch.windows * Hm
        let states = scratch.buffer("mamba.state", jobs * N * P)
        let st = states.pointer
        let hpg = m.headsPerGroup
        let aLogP = aLog.pointer, dP = dSkip.pointer
        parallelFor(jobs) { job in
            let b = job / Hm, h = job % Hm, g = h / hpg
            let a = -Foundation.exp(aLogP[h])
            let s = st + job * N * P
            s.update(repeating: 0, count: N * P)
            for t in 0..<T {
                let r = b * T + t
                let row = xp + r * C
                let delta = dtp[r * Hm + h]
                Mamba2Mixer.scanStep(state: s, x: row + h * P, b: row + I + g * N, c: row + I + gn + g * N,
                                     delta: delta, decay: Foundation.exp(delta * a), d: dP[h],
                                     P: P, N: N, into: yp + r * I + h * P)
            }
        }

        // 5. Gated RMSNorm: gate first, then normalise each group of I/G channels separately.
        let gs = m.normGroupSize, nw = normW.pointer
        parallelFor(rows) { r in
            let z = zxp + r * R, yr = yp + r * I
            for i in 0..<I { yr[i] *= Kernels.silu(z[i]) }
            for g in 0..<G {
                let seg = yr + g * gs
                var ss: Float = 0
                for i in 0..<gs { ss += seg[i] * seg[i] }
                let inv = 1 / (ss / Float(gs) + eps).squareRoot()
                let wg = nw + g * gs
                for i in 0..<gs { seg[i] = wg[i] * (seg[i] * inv) }
            }
        }

        // 6. out_proj.
        let wOut = scratch.buffer("mamba.w_out", hidden * I)
        try w.load(.mambaOutProj, layer: layer, expert: nil, into: wOut.pointer)
        observer?.linearInput(layer: layer, role: .mambaOutProj, expert: nil, input: yp, rows: rows, width: I)
        Linear.forward(yp, rows: rows, in: I, weight: wOut.pointer, out: hidden, into: out)
    }

    /// One token of one head: S ← decay·S + (Δ·B) ⊗ x, y = S·C + D·x, with S kept [N, P].
    ///
    /// The state is walked along n for a block of 32 p's at a time, so y's 32 partial sums stay in
    /// registers and each state element is loaded and stored once per token; with y in memory
    /// (the plain p-inner loop) every n step also loaded and stored y, and the loop was bound by
    /// those stores. Products and sums happen in the same order as that plain loop (y from 0,
    /// n ascending, D·x last), so results are unchanged to the bit.
    @inline(__always)
    static func scanStep(state s: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, b: UnsafePointer<Float>,
                         c: UnsafePointer<Float>, delta: Float, decay: Float, d: Float, P: Int, N: Int,
                         into y: UnsafeMutablePointer<Float>) {
        typealias V = SIMD8<Float>
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        @inline(__always) func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }
        var p0 = 0
        while p0 + 32 <= P {
            let x0 = load(x + p0), x1 = load(x + p0 + 8), x2 = load(x + p0 + 16), x3 = load(x + p0 + 24)
            var a0 = V(), a1 = V(), a2 = V(), a3 = V()
            for n in 0..<N {
                let bn = delta * b[n], cn = c[n]
                let sp = s + n * P + p0
                let v0 = decay * load(sp) + bn * x0, v1 = decay * load(sp + 8) + bn * x1
                let v2 = decay * load(sp + 16) + bn * x2, v3 = decay * load(sp + 24) + bn * x3
                store(v0, sp); store(v1, sp + 8); store(v2, sp + 16); store(v3, sp + 24)
                a0 += v0 * cn; a1 += v1 * cn; a2 += v2 * cn; a3 += v3 * cn
            }
            store(a0 + d * x0, y + p0); store(a1 + d * x1, y + p0 + 8)
            store(a2 + d * x2, y + p0 + 16); store(a3 + d * x3, y + p0 + 24)
            p0 += 32
        }
        // Head sizes that are not a multiple of 32 (tests, small models): the rest one p at a time.
        for p in p0..<P {
            let xp = x[p]
            var acc: Float = 0
            for n in 0..<N {
                let sp = s + n * P + p
                let v = decay * sp.pointee + (delta * b[n]) * xp
                sp.pointee = v
                acc += v * c[n]
            }
            y[p] = acc + d * xp
        }
    }
}
