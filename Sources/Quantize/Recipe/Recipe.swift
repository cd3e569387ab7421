import Formats

/// Which scheme each tensor gets. A recipe is an ordered list of rules (first match wins), then
/// the default exclusions that keep sensitive tensors in high precision, then a default scheme
/// for the remaining linear weights.
///
/// JSON form (docs/RECIPES.md):
/// ```json
/// {"name": "mine", "default": "int4-g128-sym", "lm_head": "int8", "per_head_scales": true,
///  "rules": [{"role": "attn_q", "scheme": "bf16"},
///            {"name": "backbone.layers.5.*", "scheme": "int8"},
///            {"role": "mamba_in_proj", "segment": "dt", "scheme": "bf16"}]}
/// ```
public struct Recipe: Equatable, Sendable {
    public struct Rule: Equatable, Sendable {
        public var role: TensorRole?
        /// Glob over hub names (`*` matches any run of characters).
        public var name: String?
        public var layers: [Int]?
        /// in_proj segment: z, x, B, C or dt.
        public var segment: String?
        /// A scheme, or `keep` for the source precision.
        public var scheme: String

        public init(role: TensorRole? = nil, name: String? = nil, layers: [Int]? = nil, segment: String? = nil, scheme: String) {
            self.role = role; self.name = name; self.layers = layers; self.segment = segment; self.scheme = scheme
        }
    }

    public var name: String
    public var defaultScheme: QuantScheme
    public var rules: [Rule]
    /// Give fp8-tensor scales per SSM head / group in in_proj instead of one per tensor.
    public var perHeadScales: Bool
    /// Use group = head_dim for INT4 on out_proj, so a group never spans two heads.
    public var outProjGroupByHead: Bool
    /// Mamba in_proj in one scheme: its dt rows follow the x rows instead of staying in high
    /// precision. For output formats that store one scheme per tensor (Hugging Face exports),
    /// which is how NVIDIA's own FP8/NVFP4 Nemotron checkpoints store in_proj.
    public var wholeInProj = false
    /// Keep in_proj and out_proj of each Mamba layer that feeds an attention layer (the last Mamba
    /// layer before it) in the source precision, as NVIDIA's Nemotron 3 Nano FP8/NVFP4 releases do.
    public var keepMambaBeforeAttention = false
    /// Declare an FP8 KV cache (export formats that carry one write K/V scales from calibration).
    public var kvCacheFP8 = false

    public init(name: String, defaultScheme: QuantScheme, rules: [Rule] = [], perHeadScales: Bool = true,
                outProjGroupByHead: Bool = true) {
        self.name = name; self.defaultScheme = defaultScheme; self.rules = rules
        self.perHeadScales = perHeadScales; self.outProjGroupByHead = outProjGroupByHead
    }

    /// The defaults every recipe ends with (docs/RECIPES.md, docs/nemotron-h.md §5): conv1d, A_log, D, dt_bias, norms,
    /// embeddings in source precision; router weight and correction bias in F32; Mamba dt rows in
    /// source precision; lm_head int8.
    public static let defaultExclusions: [Rule] = [
        Rule(role: .mambaConvWeight, scheme: "keep"), Rule(role: .mambaConvBias, scheme: "keep"),
        Rule(role: .mambaALog, scheme: "f32"), Rule(role: .mambaD, scheme: "f32"), Rule(role: .mambaDtBias, scheme: "keep"),
        Rule(role: .layerNorm, scheme: "keep"), Rule(role: .finalNorm, scheme: "keep"), Rule(role: .mambaNorm, scheme: "keep"),
        Rule(role: .routerWeight, scheme: "f32"), Rule(role: .routerBias, scheme: "f32"),
        Rule(role: .embedding, scheme: "keep"), Rule(role: .mambaInProj, segment: "dt", scheme: "keep"),
        Rule(role: .lmHead, scheme: "int8"),
    ]

    public enum Builtin: String, CaseIterable, Sendable {
        case int8, int4, fp8, mixed, mxfp4, nvfp4
        /// NVIDIA's published choices for Nemotron 3 Nano (docs/HF-EXPORTS.md), in FP8 or NVFP4.
        case nvidiaFP8 = "nvidia-fp8", nvidiaNVFP4 = "nvidia-nvfp4"
    }

    public static func builtin(_ b: Builtin, groupSize: Int = 128) -> Recipe {
        switch b {
        case .int8:
            // At 8 bits the two default exceptions cost more than they give (measured on both
            // fixtures, heldout perplexity): lm_head in INT8 adds +0.005% / +0.003% over BF16, and
            // BF16 dt rows are no better than INT8 ones — every dt row already gets its own
            // per-channel scale, which is all the protection they need at this precision. So the
            // int8 built-in keeps lm_head in the source precision (BF16: 1% of a real model's
            // weights) and quantizes in_proj whole, and does at least as well as reference.json's
            // int8-channel baseline on both fixtures.
            return Recipe(name: "int8", defaultScheme: .int8Channel, rules: [
                Rule(role: .mambaInProj, segment: "dt", scheme: "int8"), Rule(role: .lmHead, scheme: "keep"),
            ])
        case .int4: return Recipe(name: "int4", defaultScheme: .int4(group: groupSize, symmetric: true))
        case .fp8: return Recipe(name: "fp8", defaultScheme: .fp8Tensor)
        // FP4 with the int4 recipe's exclusions, for comparing the formats at equal coverage: every
        // projection and expert in MXFP4 (E8M0 scale per 32) or NVFP4 (E4M3 scale per 16 under a
        // global scale per tensor — per expert, per SSM head in in_proj); lm_head INT8.
        case .mxfp4: return Recipe(name: "mxfp4", defaultScheme: QuantScheme(codec: MXFP4Codec()))
        case .nvfp4: return Recipe(name: "nvfp4", defaultScheme: QuantScheme(codec: NVFP4Codec()))
        case .nvidiaFP8, .nvidiaNVFP4:
            // NVIDIA-Nemotron-3-Nano-30B-A3B-FP8 / -NVFP4 (model cards; the NVFP4 release's
            // hf_quant_config.json): routed and shared experts and the other Mamba GEMMs quantized
            // with one scale per tensor (in_proj whole), attention and the Mamba layers feeding it
            // BF16, conv1d, A_log, D, dt_bias, norms, embeddings and lm_head as stored, router F32,
            // FP8 KV cache.
            var r = Recipe(name: b.rawValue, defaultScheme: b == .nvidiaFP8 ? .fp8Tensor : QuantScheme(codec: NVFP4Codec()), rules: [
                Rule(role: .attnQ, scheme: "keep"), Rule(role: .attnK, scheme: "keep"), Rule(role: .attnV, scheme: "keep"),
                Rule(role: .attnO, scheme: "keep"), Rule(role: .lmHead, scheme: "keep"),
                Rule(role: .mambaALog, scheme: "keep"), Rule(role: .mambaD, scheme: "keep"),
            ], perHeadScales: false, outProjGroupByHead: false)
            r.wholeInProj = true
            r.keepMambaBeforeAttention = true
            r.kvCacheFP8 = true
            return r
        case .mixed:
            return Recipe(name: "mixed", defaultScheme: .int8Channel, rules: [
                Rule(role: .expertUp, scheme: "int4-g\(groupSize)-sym"), Rule(role: .expertDown, scheme: "int4-g\(groupSize)-sym"),
                Rule(role: .attnQ, scheme: "bf16"), Rule(role: .attnK, scheme: "bf16"),
                Rule(role: .attnV, scheme: "bf16"), Rule(role: .attnO, scheme: "bf16"),
            ])
        }
    }

    /// Resolves the plan for one tensor.
    public func plan(name: String, role: TensorRole, layer: Int?, shape: [Int], sourceDType: DType,
                     config: ModelConfig) throws -> TensorPlan {
        let (rows, cols) = Self.storageShape(role: role, shape: shape)
        let keep: QuantScheme = sourceDType == .bf16 ? .bf16 : sourceDType == .f16 ? .f16 : .f32

        let feedsAttention = keepMambaBeforeAttention && (role == .mambaInProj || role == .mambaOutProj)
            && layer.map { Self.mambaLayersFeedingAttention(config).contains($0) } == true
        func resolve(segment: String?) throws -> QuantScheme {
            if feedsAttention { return keep }
            // Segment rules first (user's, then the defaults: dt stays high-precision unless a
            // user rule names the dt segment), then rules for whole tensors.
            let all = rules + Self.defaultExclusions
            for r in all where r.segment != nil && matches(r, name: name, role: role, layer: layer, segment: segment) {
                return try Self.scheme(r.scheme, keep: keep, recipe: self.name)
            }
            for r in all where r.segment == nil && matches(r, name: name, role: role, layer: layer, segment: segment) {
                return try Self.scheme(r.scheme, keep: keep, recipe: self.name)
            }
            return role.isLinear ? defaultScheme : keep
        }

        if role == .mambaInProj, let m = config.mamba {
            var segs: [TensorPlan.Segment] = []
            for (segName, range) in m.inProjSegments {
                let s = try resolve(segment: wholeInProj && segName == "dt" ? "x" : segName)
                let block: Int? = perHeadScales ? (segName == "z" || segName == "x" ? m.headDim : segName == "dt" ? nil : m.stateSize) : nil
                segs.append(TensorPlan.Segment(name: segName, rows: range, scheme: adjust(s, role: role, cols: cols, config: config),
                                               blockRows: block))
            }
            // Without per-head scales, adjacent segments of one scheme are stored as one, so a
            // per-tensor scale really covers the whole run of rows.
            if !perHeadScales { segs = Self.merged(segs) }
            return TensorPlan(segments: segs, rows: rows, cols: cols)
        }
        let s = adjust(try resolve(segment: nil), role: role, cols: cols, config: config)
        return TensorPlan(segments: [TensorPlan.Segment(name: "", rows: 0..<rows, scheme: s)], rows: rows, cols: cols)
    }

    /// For each attention layer, the last Mamba layer before it (none if another attention layer
    /// comes first): Nemotron 3 Nano's 4, 11, 18, 25, 32 and 41.
    public static func mambaLayersFeedingAttention(_ config: ModelConfig) -> Set<Int> {
        var out = Set<Int>(), lastMamba: Int?
        for (l, kind) in config.layers.enumerated() {
            switch kind {
            case .mamba: lastMamba = l
            case .attention: if let m = lastMamba { out.insert(m) }; lastMamba = nil
            default: break
            }
        }
        return out
    }

    /// Fits a built-in recipe to an export format that stores one scale per tensor and no INT8
    /// (ModelOpt): one scale per in_proj, lm_head as stored (ModelOpt's default exclusion).
    public mutating func fitPerTensorExport() {
        perHeadScales = false
        if !rules.contains(where: { $0.role == .lmHead }) { rules.append(Rule(role: .lmHead, scheme: "keep")) }
    }

    /// Quantized schemes only make sense for matrices; out_proj INT4 groups follow heads.
    private func adjust(_ s: QuantScheme, role: TensorRole, cols: Int, config: ModelConfig) -> QuantScheme {
        if let c = s.int4, role == .mambaOutProj, outProjGroupByHead, let m = config.mamba {
            return .int4(group: m.headDim, symmetric: c.symmetric)
        }
        return s
    }

    static func merged(_ segs: [TensorPlan.Segment]) -> [TensorPlan.Segment] {
        var out: [TensorPlan.Segment] = []
        for s in segs {
            if let last = out.last, last.scheme == s.scheme, last.rows.upperBound == s.rows.lowerBound {
                out[out.count - 1] = TensorPlan.Segment(name: last.name + s.name, rows: last.rows.lowerBound..<s.rows.upperBound,
                                                        scheme: s.scheme, blockRows: nil)
            } else {
                out.append(TensorPlan.Segment(name: s.name, rows: s.rows, scheme: s.scheme, blockRows: nil))
            }
        }
        return out
    }

    /// [rows, cols] a tensor is stored as: matrices as they are, vectors as one row, conv
    /// kernels [C, 1, K] as [C, K].
    public static func storageShape(role: TensorRole, shape: [Int]) -> (Int, Int) {
        switch shape.count {
        case 0: return (1, 1)
        case 1: return (1, shape[0])
        case 2: return (shape[0], shape[1])
        default: return (shape[0], shape.dropFirst().reduce(1, *))
        }
    }

    static func scheme(_ text: String, keep: QuantScheme, recipe: String) throws -> QuantScheme {
        if text == "keep" { return keep }
        guard let s = QuantScheme(text) else { throw RecipeError("recipe '\(recipe)': unknown scheme '\(text)'") }
        return s
    }

    private func matches(_ r: Rule, name: String, role: TensorRole, layer: Int?, segment: String?) -> Bool {
        if let want = r.role, want != role { return false }
        if let g = r.name, !Self.glob(g, name) { return false }
        if let ls = r.layers { guard let l = layer, ls.contains(l) else { return false } }
        // A rule without a segment applies to the whole in_proj except where a segment rule says otherwise.
        if let s = r.segment { return s == segment }
        return true
    }

    /// `*` matches any run of characters (including dots); everything else literally.
    static func glob(_ pattern: String, _ s: String) -> Bool {
        let p = Array(pattern.utf8), t = Array(s.utf8)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && p[pi] == UInt8(ascii: "*") { star = pi; mark = ti; pi += 1 }
            else if pi < p.count && p[pi] == t[ti] { pi += 1; ti += 1 }
            else if star >= 0 { pi = star + 1; mark += 1; ti = mark }
            else { return false }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}

public struct RecipeError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}
