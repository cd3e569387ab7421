import Foundation
import Formats

/// The Mamba-2 mixer written as literally as docs/nemotron-h.md §3.3 states it, in Double, one
/// window and one token at a time, with every index spelled out. It shares no code with
/// Sources/Calibrate/Mamba2Mixer.swift: it is what that file is checked against.
///
/// The two knobs reproduce known wrong implementations, so a test can show it would catch them:
/// `groupOf` (the right mapping is h / (Hm/G); llama.cpp once used h mod G) and `normGroups`
/// (the right gated norm is per group of I/G channels; a full-width norm is 1 group).
struct NaiveMamba2 {
    let dims: MambaDims
    let hidden: Int
    let eps: Double
    var groupOf: ((_ head: Int) -> Int)? = nil
    var normGroups: Int? = nil

    struct Weights {
        var inProj: [Float]      // [2I + 2GN + Hm, hidden]
        var convW: [Float]       // [I + 2GN, 1, K]
        var convB: [Float]       // [I + 2GN]
        var aLog: [Float], d: [Float], dtBias: [Float]   // [Hm]
        var norm: [Float]        // [I]
        var outProj: [Float]     // [hidden, I]
    }

    /// Δ[t][h] for one window, as the mixer must compute it (softplus with torch's threshold, then
    /// the clamp when `clamp` is given).
    static func delta(_ raw: Double, clamp: (Double, Double)?) -> Double {
        let sp = raw > 20 ? raw : log1p(exp(raw))
        guard let (lo, hi) = clamp else { return sp }
        return min(max(sp, lo), hi)
    }

    /// u: [T, hidden] of one window → out [T, hidden]; also returns Δ [T, Hm].
    func forward(_ u: [Float], T: Int, weights w: Weights, clamp: (Double, Double)?) -> (out: [Double], delta: [Double]) {
        let Hm = dims.heads, P = dims.headDim, G = dims.groups, N = dims.stateSize, K = dims.convKernel
        let I = Hm * P, GN = G * N, convDim = I + 2 * GN, R = 2 * I + 2 * GN + Hm
        func silu(_ v: Double) -> Double { v / (1 + exp(-v)) }

        // 1. in_proj, then the split z | xBC | dt.
        var z = [[Double]](repeating: [], count: T), xBC = z, dt = z
        for t in 0..<T {
            var row = [Double](repeating: 0, count: R)
            for o in 0..<R {
                var s = 0.0
                for i in 0..<hidden { s += Double(w.inProj[o * hidden + i]) * Double(u[t * hidden + i]) }
                row[o] = s
            }
            z[t] = Array(row[0..<I])
            xBC[t] = Array(row[I..<(I + convDim)])
            dt[t] = Array(row[(I + convDim)..<R])
        }

        // 2. Causal depthwise conv (w[c, K-1] multiplies the current token), then SiLU.
        var conv = [[Double]](repeating: [Double](repeating: 0, count: convDim), count: T)
        for t in 0..<T {
            for c in 0..<convDim {
                var v = Double(w.convB[c])
                for k in 0..<K {
                    let src = t - (K - 1) + k
                    if src >= 0 { v += Double(w.convW[c * K + k]) * xBC[src][c] }
                }
                conv[t][c] = silu(v)
            }
        }

        // 3–6. Split, Δ, A, and the recurrence per head with state S[p][n].
        var y = [[Double]](repeating: [Double](repeating: 0, count: I), count: T)
        var deltas = [Double](repeating: 0, count: T * Hm)
        for h in 0..<Hm {
            let g = groupOf?(h) ?? h / (Hm / G)
            let A = -exp(Double(w.aLog[h]))
            var S = [[Double]](repeating: [Double](repeating: 0, count: N), count: P)
            for t in 0..<T {
                let delta = NaiveMamba2.delta(dt[t][h] + Double(w.dtBias[h]), clamp: clamp)
                deltas[t * Hm + h] = delta
                let x = { (p: Int) in conv[t][h * P + p] }
                let B = { (n: Int) in conv[t][I + g * N + n] }
                let C = { (n: Int) in conv[t][I + GN + g * N + n] }
                for p in 0..<P {
                    var acc = 0.0
                    for n in 0..<N {
                        S[p][n] = exp(delta * A) * S[p][n] + delta * x(p) * B(n)
                        acc += S[p][n] * C(n)
                    }
                    y[t][h * P + p] = acc + Double(w.d[h]) * x(p)
                }
            }
        }

        // 7. Gated RMSNorm: gate first, then each group of I / groups channels on its own.
        let ng = normGroups ?? G, gs = I / ng
        var out = [Double](repeating: 0, count: T * hidden)
        for t in 0..<T {
            var a = (0..<I).map { y[t][$0] * silu(z[t][$0]) }
            for g in 0..<ng {
                var ss = 0.0
                for i in (g * gs)..<((g + 1) * gs) { ss += a[i] * a[i] }
                let inv = 1 / (ss / Double(gs) + eps).squareRoot()
                for i in (g * gs)..<((g + 1) * gs) { a[i] = Double(w.norm[i]) * a[i] * inv }
            }
            // 8. out_proj.
            for o in 0..<hidden {
                var s = 0.0
                for i in 0..<I { s += Double(w.outProj[o * I + i]) * a[i] }
                out[t * hidden + o] = s
            }
        }
        return (out, deltas)
    }
}
