import XCTest
import Foundation
import Formats
@testable import Model
import TestSupport

/// Unit tests of issue 3 §5 on constructed cases: the Δ clamp follows `time_step_limit` (none when
/// absent), heads read B/C group h / (Hm/G) with the gated norm per group, and group-limited
/// routing picks and weighs experts as worked out by hand below.
final class MixerUnitTests: XCTestCase {
    // MARK: Mamba-2 on a synthetic layer

    /// hidden 16, Hm = 4 heads of P = 4, G = 2 groups (2 heads per group), N = 3, K = 4.
    static func mambaConfig(limit: String? = nil) -> String {
        """
        {"hidden_size": 16, "vocab_size": 8, "hybrid_override_pattern": "M",
         "mamba_num_heads": 4, "mamba_head_dim": 4, "n_groups": 2, "ssm_state_size": 3, "conv_kernel": 4,
         "use_conv_bias": true, "layer_norm_epsilon": 1e-5\(limit.map { ", \"time_step_limit\": \($0)" } ?? "")}
        """
    }

    struct MambaCase {
        let weights: InMemoryWeights
        let naive: NaiveMamba2.Weights
        let input: [Float]
        let batch: Batch
    }

    /// Random layer from a seed; `dtBias` overrides the random dt_bias, and the dt rows of in_proj
    /// are scaled by `dtScale` so a test can place softplus(dt + dt_bias) where it wants.
    func mambaCase(_ cfg: ModelConfig, seed: UInt64, batch: Batch, dtBias: [Float]? = nil, dtScale: Float = 1) -> MambaCase {
        var rng = SplitMix64(seed: seed)
        let w = InMemoryWeights(config: cfg)
        w.randomLayer(0, rng: &rng)
        let m = cfg.mamba!, h = cfg.hiddenSize
        w[.mambaALog, 0, nil] = rng.values(m.heads, scale: 1)            // A in [−e, −1/e]
        w[.mambaD, 0, nil] = rng.values(m.heads, scale: 1)
        w[.mambaDtBias, 0, nil] = dtBias ?? rng.values(m.heads, scale: 1)
        w[.mambaNorm, 0, nil] = rng.values(m.innerSize, scale: 0.2, offset: 1)
        w[.mambaConvWeight, 0, nil] = rng.values(m.convDim * m.convKernel, scale: 0.5)
        var inProj = w[.mambaInProj, 0, nil]
        for r in m.inProjSegments.last!.range { for c in 0..<h { inProj[r * h + c] *= dtScale } }
        w[.mambaInProj, 0, nil] = inProj
        let naive = NaiveMamba2.Weights(
            inProj: inProj, convW: w[.mambaConvWeight, 0, nil], convB: w[.mambaConvBias, 0, nil],
            aLog: w[.mambaALog, 0, nil], d: w[.mambaD, 0, nil], dtBias: w[.mambaDtBias, 0, nil],
            norm: w[.mambaNorm, 0, nil], outProj: w[.mambaOutProj, 0, nil])
        return MambaCase(weights: w, naive: naive, input: rng.values(batch.rows * h), batch: batch)
    }

    /// Runs the real mixer; returns its output [rows, hidden] and the Δ [rows, Hm] it used.
    func runMixer(_ c: MambaCase) throws -> (out: [Float], delta: [Float]) {
        let cfg = c.weights.config, m = cfg.mamba!, rows = c.batch.rows
        let scratch = Scratch()
        let out = FloatBuffer(count: rows * cfg.hiddenSize)
        try c.input.withUnsafeBufferPointer { u in
            try Mamba2Mixer(dims: m, hidden: cfg.hiddenSize, eps: cfg.normEps, layer: 0)
                .forward(u.baseAddress!, batch: c.batch, weights: c.weights, scratch: scratch, observer: nil, into: out.pointer)
        }
        // The mixer leaves Δ in its named scratch buffer; asking for the same size returns it untouched.
        return (out.array, scratch.buffer("mamba.dt", rows * m.heads).array)
    }

    /// The naive reference over every window (each from a zero state), concatenated.
    func runNaive(_ c: MambaCase, _ ref: NaiveMamba2, clamp: (Double, Double)?) -> (out: [Double], delta: [Double]) {
        let h = c.weights.config.hiddenSize, T = c.batch.length
        var out: [Double] = [], delta: [Double] = []
        for b in 0..<c.batch.windows {
            let r = ref.forward(Array(c.input[(b * T * h)..<((b + 1) * T * h)]), T: T, weights: c.naive, clamp: clamp)
            out += r.out; delta += r.delta
        }
        return (out, delta)
    }

    func maxAbsDiff(_ a: [Float], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        return zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0
    }

    func naive(_ cfg: ModelConfig) -> NaiveMamba2 {
        NaiveMamba2(dims: cfg.mamba!, hidden: cfg.hiddenSize, eps: Double(cfg.normEps))
    }

    // dt_bias per head puts softplus(dt + dt_bias) (dt within ±0.1 after dtScale 0.1) at:
    // head 0 ≈ 6e-6 (far below any floor), head 1 ≈ 25 (above torch's softplus threshold 20, so
    // Δ = its input), head 2 ≈ 0.85, head 3 ≈ 0.31.
    static let extremeDtBias: [Float] = [-12, 25, 0.3, -1]

    func testNoClampWithoutTimeStepLimit() throws {
        let cfg = try testConfig(Self.mambaConfig())
        XCTAssertEqual(cfg.mamba!.timeStepLimit.0, 0)
        XCTAssertEqual(cfg.mamba!.timeStepLimit.1, .infinity)

        let c = mambaCase(cfg, seed: 11, batch: Batch(windows: 2, length: 6), dtBias: Self.extremeDtBias, dtScale: 0.1)
        let ours = try runMixer(c)
        let ref = runNaive(c, naive(cfg), clamp: nil)
        let Hm = cfg.mamba!.heads
        for i in 0..<ours.delta.count {
            XCTAssertEqual(Double(ours.delta[i]), ref.delta[i], accuracy: 1e-5 * max(1, ref.delta[i]), "Δ[\(i / Hm), \(i % Hm)]")
        }
        // Unclamped at both ends: below the fixtures' 0.001 floor and above 20.
        let head0 = stride(from: 0, to: ours.delta.count, by: Hm).map { ours.delta[$0] }
        let head1 = stride(from: 1, to: ours.delta.count, by: Hm).map { ours.delta[$0] }
        XCTAssertLessThan(head0.max()!, 1e-4)
        XCTAssertGreaterThan(head1.min()!, 20)
        XCTAssertLessThanOrEqual(maxAbsDiff(ours.out, ref.out), 1e-5)
    }

    func testClampAppliedWithTimeStepLimit() throws {
        let cfg = try testConfig(Self.mambaConfig(limit: "[0.05, 0.5]"))
        XCTAssertEqual(cfg.mamba!.timeStepLimit.0, 0.05)
        XCTAssertEqual(cfg.mamba!.timeStepLimit.1, 0.5)

        let c = mambaCase(cfg, seed: 11, batch: Batch(windows: 2, length: 6), dtBias: Self.extremeDtBias, dtScale: 0.1)
        let ours = try runMixer(c)
        let clamped = runNaive(c, naive(cfg), clamp: (0.05, 0.5))
        let Hm = cfg.mamba!.heads
        for r in 0..<c.batch.rows {
            XCTAssertEqual(ours.delta[r * Hm + 0], 0.05, "head 0 is raised to the lower limit")
            XCTAssertEqual(ours.delta[r * Hm + 1], 0.5, "head 1 is cut to the upper limit")
            XCTAssertEqual(ours.delta[r * Hm + 2], 0.5, "head 2 (≈ 0.85) is cut to the upper limit")
            let d3 = clamped.delta[r * Hm + 3]
            XCTAssertTrue(d3 > 0.05 && d3 < 0.5, "head 3 lies inside the limits")
            XCTAssertEqual(Double(ours.delta[r * Hm + 3]), d3, accuracy: 1e-6)
        }
        XCTAssertLessThanOrEqual(maxAbsDiff(ours.out, clamped.out), 1e-5)
        // The clamp is visible in the output: the unclamped reference is far off.
        let unclamped = runNaive(c, naive(cfg), clamp: nil)
        XCTAssertGreaterThan(maxAbsDiff(ours.out, unclamped.out), 1e-2)
    }

    func testGroupMappingWithSeveralHeadsPerGroup() throws {
        let cfg = try testConfig(Self.mambaConfig())
        let m = cfg.mamba!
        XCTAssertEqual(m.groups, 2)
        XCTAssertEqual(m.headsPerGroup, 2)
        // Three windows of different content, each from a zero state; 9 tokens spans the
        // conv kernel twice over.
        let c = mambaCase(cfg, seed: 42, batch: Batch(windows: 3, length: 9))
        let ours = try runMixer(c)
        let ref = runNaive(c, naive(cfg), clamp: nil)
        let diff = maxAbsDiff(ours.out, ref.out)
        XCTAssertLessThanOrEqual(diff, 1e-5)

        // The reference is sensitive to both known mistakes, so agreeing with it means something.
        var modulo = naive(cfg)
        modulo.groupOf = { $0 % m.groups }
        XCTAssertGreaterThan(maxAbsDiff(ours.out, runNaive(c, modulo, clamp: nil).out), 1e-3, "h mod G mapping")
        var fullWidth = naive(cfg)
        fullWidth.normGroups = 1
        XCTAssertGreaterThan(maxAbsDiff(ours.out, runNaive(c, fullWidth, clamp: nil).out), 1e-3, "ungrouped gated norm")
    }

    /// G = 4 groups of 2 heads with more state, through HybridModel (pre-norm and residual included).
    func testGroupMappingThroughHybridModel() throws {
        let cfg = try testConfig("""
            {"hidden_size": 24, "vocab_size": 8, "hybrid_override_pattern": "M",
             "mamba_num_heads": 8, "mamba_head_dim": 3, "n_groups": 4, "ssm_state_size": 5, "conv_kernel": 3,
             "use_conv_bias": true, "layer_norm_epsilon": 1e-5}
            """)
        let batch = Batch(windows: 2, length: 7)
        let c = mambaCase(cfg, seed: 7, batch: batch)
        var rng = SplitMix64(seed: 99)
        c.weights[.layerNorm, 0, nil] = rng.values(cfg.hiddenSize, scale: 0.3, offset: 1)
        let model = HybridModel(weights: c.weights)
        let x = FloatBuffer(c.input)
        try model.runLayer(0, x, batch: batch)

        // Reference: x + mixer(RMSNorm(x)), the norm in Double.
        let h = cfg.hiddenSize, nw = c.weights[.layerNorm, 0, nil]
        var normed = [Float](repeating: 0, count: c.input.count)
        for r in 0..<batch.rows {
            let row = c.input[(r * h)..<((r + 1) * h)].map(Double.init)
            let inv = 1 / (row.map { $0 * $0 }.reduce(0, +) / Double(h) + Double(cfg.normEps)).squareRoot()
            for i in 0..<h { normed[r * h + i] = Float(Double(nw[i]) * row[i] * inv) }
        }
        let normedCase = MambaCase(weights: c.weights, naive: c.naive, input: normed, batch: batch)
        let mix = runNaive(normedCase, naive(cfg), clamp: nil).out
        let expected = zip(c.input, mix).map { Double($0) + $1 }
        XCTAssertLessThanOrEqual(maxAbsDiff(x.array, expected), 1e-5)
    }

    /// P = 36: one block of 32 through the scan's vector path and 4 through its scalar tail.
    func testScanVectorBlockAndTail() throws {
        let cfg = try testConfig("""
            {"hidden_size": 16, "vocab_size": 8, "hybrid_override_pattern": "M",
             "mamba_num_heads": 4, "mamba_head_dim": 36, "n_groups": 2, "ssm_state_size": 5, "conv_kernel": 4,
             "use_conv_bias": true, "layer_norm_epsilon": 1e-5}
            """)
        let c = mambaCase(cfg, seed: 5, batch: Batch(windows: 2, length: 11))
        let ours = try runMixer(c)
        XCTAssertLessThanOrEqual(maxAbsDiff(ours.out, runNaive(c, naive(cfg), clamp: nil).out), 1e-5)
    }

    // MARK: Attention

    /// 150 tokens: a full block of 128 query rows and a partial one, so the second block's
    /// products span keys the first never sees; 2 windows, 4 query heads on 2 kv heads.
    func testBlockedCausalAttention() throws {
        let cfg = try testConfig("""
            {"hidden_size": 16, "vocab_size": 8, "hybrid_override_pattern": "*",
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8}
            """)
        XCTAssertGreaterThan(150, AttentionMixer.queryBlock)
        let batch = Batch(windows: 2, length: 150), h = cfg.hiddenSize
        var rng = SplitMix64(seed: 3)
        let w = InMemoryWeights(config: cfg)
        w.randomLayer(0, rng: &rng, scale: 0.4)
        let u = rng.values(batch.rows * h)
        let out = FloatBuffer(count: batch.rows * h)
        try u.withUnsafeBufferPointer { up in
            try AttentionMixer(dims: cfg.attention!, hidden: h, layer: 0)
                .forward(up.baseAddress!, batch: batch, weights: w, scratch: Scratch(), observer: nil, into: out.pointer)
        }
        let ref = NaiveAttention(hidden: h, heads: 4, kvHeads: 2, headDim: 8)
        var expected: [Double] = []
        for b in 0..<batch.windows {
            expected += ref.forward(Array(u[(b * 150 * h)..<((b + 1) * 150 * h)]), T: 150, q: w[.attnQ, 0, nil],
                                    k: w[.attnK, 0, nil], v: w[.attnV, 0, nil], o: w[.attnO, 0, nil])
        }
        XCTAssertLessThanOrEqual(maxAbsDiff(out.array, expected), 1e-5)
    }

    // MARK: Group-limited routing

    /// 8 experts in n_group 4 groups of 2, topk_group 2, top_k 3, norm_topk_prob, scaling 2.5.
    static func routerDims(normTopkProb: Bool = true) throws -> MoEDims {
        try testConfig("""
            {"hidden_size": 4, "vocab_size": 8, "hybrid_override_pattern": "E",
             "n_routed_experts": 8, "num_experts_per_tok": 3, "moe_intermediate_size": 4,
             "n_group": 4, "topk_group": 2, "norm_topk_prob": \(normTopkProb), "routed_scaling_factor": 2.5}
            """).moe!
    }

    /// Router logits whose sigmoids are exactly the scores a test wants: logit(s) = log(s / (1 − s)).
    static func logits(forScores s: [Double]) -> [Float] { s.map { Float(log($0 / (1 - $0))) } }

    func route(_ dims: MoEDims, scores: [Double], bias: [Float]) -> (indices: [Int32], weights: [Float]) {
        let e = dims.experts, k = dims.topK
        let lg = Self.logits(forScores: scores)
        var s = [Float](repeating: 0, count: e), c = s
        var idx = [Int32](repeating: -1, count: k), w = [Float](repeating: 0, count: k)
        Router(dims: dims).route(logits: lg, bias: bias, scores: &s, choice: &c, indices: &idx, weights: &w)
        return (idx, w)
    }

    // Sigmoid scores per expert, grouped in pairs:
    //   group 0: e0 0.9, e1 0.1   → group score (sum of its two best) 1.0
    //   group 1: e2 0.6, e3 0.5   → 1.1
    //   group 2: e4 0.8, e5 0.7   → 1.5
    //   group 3: e6 0.2, e7 0.3   → 0.5
    static let scores: [Double] = [0.9, 0.1, 0.6, 0.5, 0.8, 0.7, 0.2, 0.3]

    func testGroupLimitedRouting() throws {
        // Best two groups: 2 (1.5) and 1 (1.1). Expert 0 has the highest score of all (0.9) but its
        // group scores only 1.0, so it is excluded. Among e2..e5: e4 0.8, e5 0.7, e2 0.6 → [4, 5, 2].
        // (Without the group limit the choice would be [0, 4, 5].)
        // Weights: 0.8, 0.7, 0.6 sum to 2.1 → 0.8/2.1 = 0.380952, 0.7/2.1 = 0.333333,
        // 0.6/2.1 = 0.285714; × 2.5 → 0.952381, 0.833333, 0.714286.
        let r = route(try Self.routerDims(), scores: Self.scores, bias: [Float](repeating: 0, count: 8))
        XCTAssertEqual(r.indices, [4, 5, 2])
        for (got, want) in zip(r.weights, [2.5 * 0.8 / 2.1, 2.5 * 0.7 / 2.1, 2.5 * 0.6 / 2.1]) {
            XCTAssertEqual(Double(got), want, accuracy: 1e-6)
        }
        XCTAssertEqual(Double(r.weights[0]), 0.952381, accuracy: 1e-6)
        XCTAssertEqual(Double(r.weights[1]), 0.833333, accuracy: 1e-6)
        XCTAssertEqual(Double(r.weights[2]), 0.714286, accuracy: 1e-6)
    }

    func testGroupLimitedRoutingWithoutNormalization() throws {
        // Same choice; weights are the sigmoids × 2.5: 2.0, 1.75, 1.5.
        let r = route(try Self.routerDims(normTopkProb: false), scores: Self.scores, bias: [Float](repeating: 0, count: 8))
        XCTAssertEqual(r.indices, [4, 5, 2])
        for (got, want) in zip(r.weights, [2.0, 1.75, 1.5]) { XCTAssertEqual(Double(got), want, accuracy: 1e-6) }
    }

    func testCorrectionBiasChangesSelectionNotWeights() throws {
        // Bias +0.7 on group 3 only. Biased scores c: group 3 becomes e6 0.9, e7 1.0 → 1.9; the
        // others are unchanged (1.0, 1.1, 1.5). Best two groups: 3 (1.9) and 2 (1.5).
        // Top 3 by c among e4..e7: e7 1.0, e6 0.9, e4 0.8 → [7, 6, 4].
        // Weights use the unbiased sigmoids: 0.3, 0.2, 0.8, sum 1.3 → 0.230769, 0.153846,
        // 0.615385; × 2.5 → 0.576923, 0.384615, 1.538462. (From the biased scores they would be
        // 1.0, 0.9, 0.8 / 2.7 × 2.5 = 0.925926, 0.833333, 0.740741.)
        var bias = [Float](repeating: 0, count: 8)
        bias[6] = 0.7; bias[7] = 0.7
        let r = route(try Self.routerDims(), scores: Self.scores, bias: bias)
        XCTAssertEqual(r.indices, [7, 6, 4])
        for (got, want) in zip(r.weights, [0.576923, 0.384615, 1.538462]) {
            XCTAssertEqual(Double(got), want, accuracy: 1e-6)
        }
    }

    func testBiasPromotesGroupsAndExcludedGroupsStayOut() throws {
        // Bias −1 on groups 1 and 2 and +1 on group 0 and 3. Biased c:
        //   group 0: e0 1.9, e1 1.1 → 3.0      group 1: e2 −0.4, e3 −0.5 → −0.9
        //   group 2: e4 −0.2, e5 −0.3 → −0.5   group 3: e6 1.2, e7 1.3 → 2.5
        // Kept: groups 0 and 3. Top 3: e0 1.9, e7 1.3, e6 1.2 → [0, 7, 6].
        // Weights (unbiased): 0.9, 0.3, 0.2, sum 1.4 → × 2.5 / 1.4: 1.607143, 0.535714, 0.357143.
        let bias: [Float] = [1, 1, -1, -1, -1, -1, 1, 1]
        let r = route(try Self.routerDims(), scores: Self.scores, bias: bias)
        XCTAssertEqual(r.indices, [0, 7, 6])
        for (got, want) in zip(r.weights, [1.607143, 0.535714, 0.357143]) {
            XCTAssertEqual(Double(got), want, accuracy: 1e-6)
        }

        // With every biased score negative, the top_k still come only from the kept groups (the
        // excluded ones are −∞, not 0). Bias −2 everywhere: c = s − 2, group sums as before minus 4
        // → kept groups 2 (−2.5) and 1 (−2.9); top 3: e4 −1.2, e5 −1.3, e2 −1.4 → [4, 5, 2].
        let r2 = route(try Self.routerDims(), scores: Self.scores, bias: [Float](repeating: -2, count: 8))
        XCTAssertEqual(r2.indices, [4, 5, 2])
    }
}
