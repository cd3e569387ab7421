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
        for b in 0..<batch.windows {
            for t in 0..<T {
                let dst = xp + (b * T + t) * C
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
        }

        // 3. Δ = softplus(dt + dt_bias), clamped to time_step_limit.
        let dt = scratch.buffer("mamba.dt", rows * Hm)
        let (lo, hi) = m.timeStepLimit
        for r in 0..<rows {
            let src = zxp + r * R + 2 * I + 2 * gn
            for h in 0..<Hm { dt[r * Hm + h] = min(max(Kernels.softplus(src[h] + dtBias[h]), lo), hi) }
        }

        // 4. Selective scan, per window and head; state kept [N, P] so the inner loop is a
        //    vectorizable update over P with no reduction.
        let y = scratch.buffer("mamba.y", rows * I)
        y.zero()
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
                let xh = row + h * P, bg = row + I + g * N, cg = row + I + gn + g * N
                let delta = dtp[r * Hm + h]
                let decay = Foundation.exp(delta * a)
                let yh = yp + r * I + h * P
                for n in 0..<N {
                    let bn = delta * bg[n], cn = cg[n]
                    let sn = s + n * P
                    for p in 0..<P {
                        let v = decay * sn[p] + bn * xh[p]
                        sn[p] = v
                        yh[p] += v * cn
                    }
                }
                let dh = dP[h]
                for p in 0..<P { yh[p] += dh * xh[p] }
            }
        }

        // 5. Gated RMSNorm: gate first, then normalise each group of I/G channels separately.
        let gs = m.normGroupSize, nw = normW.pointer
        for r in 0..<rows {
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
}
