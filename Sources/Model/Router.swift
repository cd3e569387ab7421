import Foundation
import Formats

/// The DeepSeek-V3-style sigmoid router of Nemotron-H MoE layers (docs/nemotron-h.md §3.6).
///
/// The correction bias only chooses experts; the weights are the unbiased sigmoid scores. With
/// n_group > 1, a group's score is the sum of its two best biased scores, and experts outside the
/// `topk_group` best groups are excluded (set to −∞, so a negative biased score in a kept group
/// still beats them).
public struct Router: Sendable {
    public let dims: MoEDims

    public init(dims: MoEDims) { self.dims = dims }

    /// Routes one token. `logits` are the FP32 router outputs [E]; writes `topK` expert indices
    /// (best first) and their weights.
    public func route(logits: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                      scores: UnsafeMutablePointer<Float>, choice: UnsafeMutablePointer<Float>,
                      indices: UnsafeMutablePointer<Int32>, weights: UnsafeMutablePointer<Float>) {
        let e = dims.experts
        for i in 0..<e {
            let s = 1 / (1 + Foundation.exp(-logits[i]))
            scores[i] = s
            choice[i] = s + bias[i]
        }
        if dims.nGroup > 1 { limitGroups(choice) }
        // Repeated argmax: k is small (6 of 128 in Nemotron-3-Nano). A chosen expert is marked NaN,
        // which no comparison selects again; ties go to the lower index.
        for j in 0..<dims.topK {
            var best = -1
            var bv = -Float.infinity
            for i in 0..<e {
                let v = choice[i]
                if !v.isNaN && (best < 0 || v > bv) { bv = v; best = i }
            }
            if best < 0 {
                // Only NaN scores left (a broken router): take the lowest index not yet chosen.
                best = (0..<e).first { i in !(0..<j).contains { indices[$0] == Int32(i) } } ?? 0
            }
            indices[j] = Int32(best)
            weights[j] = scores[best]
            choice[best] = .nan
        }
        if dims.normTopkProb {
            var sum: Float = 0
            for j in 0..<dims.topK { sum += weights[j] }
            let inv = 1 / (sum + 1e-20)
            for j in 0..<dims.topK { weights[j] *= inv }
        }
        for j in 0..<dims.topK { weights[j] *= dims.routedScalingFactor }
    }

    private func limitGroups(_ c: UnsafeMutablePointer<Float>) {
        let g = dims.nGroup, per = dims.experts / g
        var groupScore = [Float](repeating: 0, count: g)
        for gi in 0..<g {
            var a = -Float.infinity, b = -Float.infinity
            for i in 0..<per {
                let v = c[gi * per + i]
                if v > a { b = a; a = v } else if v > b { b = v }
            }
            groupScore[gi] = a + b
        }
        var keep = [Bool](repeating: false, count: g)
        for _ in 0..<dims.topkGroup {
            var best = -1
            for gi in 0..<g where !keep[gi] && (best < 0 || groupScore[gi] > groupScore[best]) { best = gi }
            keep[best] = true
        }
        for gi in 0..<g where !keep[gi] {
            (c + gi * per).update(repeating: -.infinity, count: per)
        }
    }
}
