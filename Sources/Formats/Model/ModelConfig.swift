/// One typed description of a Nemotron-H model, whatever spelling its config.json used.
public struct ModelConfig: Equatable, Sendable {
    public var modelType: String
    public var hiddenSize: Int
    public var vocabSize: Int
    public var normEps: Float
    public var tieWordEmbeddings: Bool
    public var layers: [LayerKind]
    public var mamba: MambaDims?
    public var attention: AttentionDims?
    public var mlp: MLPDims?
    public var moe: MoEDims?
    public var bosTokenId: Int?
    public var eosTokenId: Int?

    /// The pattern string in `hybrid_override_pattern` form, e.g. `MEMEM*EMEMEM*E`.
    public var pattern: String { String(layers.map { Character($0.rawValue) }) }

    public func count(_ kind: LayerKind) -> Int { layers.filter { $0 == kind }.count }
}

extension ModelConfig {
    /// Reads config.json from a file.
    public init(contentsOf path: String) throws(FormatError) {
        let bytes = try MappedFile.contents(of: path)
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch {
            throw FormatError.invalidConfig(file: path, message: "not valid JSON: \(error)")
        }
        try self.init(json: json, file: path)
    }

    /// Parses every spelling documented in docs/nemotron-h.md §1 and §7 and rejects configs that
    /// cannot describe a model (heads that don't divide, unknown pattern letters, top-k > experts).
    public init(json: JSONValue, file: String = "config.json") throws(FormatError) {
        guard let o = json.objectValue else { throw FormatError.invalidConfig(file: file, message: "top level is not a JSON object") }
        let r = ConfigReader(object: o, file: file)

        modelType = try r.string("model_type") ?? "nemotron_h"
        hiddenSize = try r.positiveInt("hidden_size")
        vocabSize = try r.positiveInt("vocab_size")
        let eps = try r.double(["layer_norm_epsilon", "rms_norm_eps", "norm_eps"]) ?? 1e-5
        normEps = Float(eps)
        // RMSNorm divides by sqrt(mean + eps): eps ≤ 0 divides by zero on an all-zero row, NaN
        // poisons every row. Checked as Float, the precision it is used in (1e-50 is 0 there).
        guard normEps.isFinite, normEps > 0 else { throw r.error("layer_norm_epsilon must be a positive finite number, got \(eps)") }
        tieWordEmbeddings = try r.bool(["tie_word_embeddings"]) ?? false
        bosTokenId = try r.optionalInt(["bos_token_id"])
        eosTokenId = try r.optionalIntOrFirst("eos_token_id")
        layers = try r.layerPattern()
        guard !layers.isEmpty else { throw r.error("the layer pattern is empty") }
        if let n = try r.optionalInt(["num_hidden_layers"]), n != layers.count {
            throw r.error("num_hidden_layers is \(n) but the layer pattern has \(layers.count) layers")
        }

        let hidden = hiddenSize
        if layers.contains(.mamba) {
            let heads = try r.positiveInt("mamba_num_heads")
            let headDim = try r.positiveInt("mamba_head_dim")
            let groups = try r.optionalInt(["n_groups", "mamba_n_groups"]) ?? 1
            let state = try r.positiveInt("ssm_state_size")
            let kernel = try r.optionalInt(["conv_kernel", "mamba_d_conv"]) ?? 4
            let chunk = try r.optionalInt(["chunk_size", "mamba_chunk_size"]) ?? 128
            guard groups > 0, heads % groups == 0 else {
                throw r.error("mamba_num_heads \(heads) is not divisible by n_groups \(groups)")
            }
            guard kernel > 0 else { throw r.error("conv_kernel must be positive, got \(kernel)") }
            guard chunk > 0 else { throw r.error("chunk_size must be positive, got \(chunk)") }
            var limit: (Float, Float) = (0, .infinity)
            if let v = try r.value(["time_step_limit", "mamba_dt_limit"]), !v.isNull {
                guard let a = v.arrayValue, a.count == 2, let lo = a[0].doubleValue, let hi = a[1].doubleValue else {
                    throw r.error("time_step_limit must be a pair [min, max] of numbers, got \(v)")
                }
                // Δ is clamped to [min, max] in Float: −∞ / +∞ mean "no clamp on that side" (the
                // hub's [0.0, Infinity]), but a NaN, an inverted pair, an infinite minimum or a
                // maximum ≤ 0 makes every Δ NaN, infinite or zero.
                let fl = Float(lo), fh = Float(hi)
                guard !fl.isNaN, !fh.isNaN, fl < .infinity, fh > 0, fl <= fh else {
                    throw r.error("time_step_limit must be [min, max] with min ≤ max, min < ∞ and max > 0, got \(v)")
                }
                limit = (fl, fh)
            }
            mamba = MambaDims(heads: heads, headDim: headDim, groups: groups, stateSize: state, convKernel: kernel,
                              chunkSize: chunk,
                              convBias: try r.bool(["use_conv_bias", "mamba_conv_bias"]) ?? true,
                              projBias: try r.bool(["use_bias", "mamba_proj_bias"]) ?? false,
                              timeStepLimit: limit)
        }
        if layers.contains(.attention) {
            let heads = try r.positiveInt("num_attention_heads")
            let kv = try r.optionalInt(["num_key_value_heads"]) ?? heads
            let headDim: Int
            if let d = try r.optionalInt(["head_dim", "attention_head_dim"]) { headDim = d } else {
                guard hidden % heads == 0 else {
                    throw r.error("no head_dim given and hidden_size \(hidden) is not divisible by num_attention_heads \(heads)")
                }
                headDim = hidden / heads
            }
            guard headDim > 0 else { throw r.error("head_dim must be positive, got \(headDim)") }
            guard kv > 0, heads % kv == 0 else {
                throw r.error("num_attention_heads \(heads) is not divisible by num_key_value_heads \(kv)")
            }
            attention = AttentionDims(heads: heads, kvHeads: kv, headDim: headDim, bias: try r.bool(["attention_bias"]) ?? false)
        }
        if layers.contains(.mlp) {
            mlp = MLPDims(intermediateSize: try r.positiveInt("intermediate_size"), bias: try r.bool(["mlp_bias"]) ?? false)
            if let act = try r.string("mlp_hidden_act"), act != "relu2" {
                throw r.error("mlp_hidden_act '\(act)' is not supported (Nemotron-H uses relu2)")
            }
        }
        if layers.contains(.moe) {
            let experts = try r.positiveInt("n_routed_experts")
            let topK = try r.positiveInt("num_experts_per_tok")
            let nGroup = try r.optionalInt(["n_group"]) ?? 1
            let topkGroup = try r.optionalInt(["topk_group"]) ?? 1
            let shared = try r.optionalInt(["n_shared_experts"]) ?? 0
            guard shared >= 0 else { throw r.error("n_shared_experts must not be negative, got \(shared)") }
            guard topK <= experts else { throw r.error("num_experts_per_tok \(topK) exceeds n_routed_experts \(experts)") }
            guard nGroup > 0, experts % nGroup == 0 else { throw r.error("n_routed_experts \(experts) is not divisible by n_group \(nGroup)") }
            guard topkGroup > 0, topkGroup <= nGroup else { throw r.error("topk_group \(topkGroup) must be between 1 and n_group \(nGroup)") }
            guard topK <= topkGroup * (experts / nGroup) else {
                throw r.error("num_experts_per_tok \(topK) exceeds the \(topkGroup * (experts / nGroup)) experts in the topk_group best groups")
            }
            if nGroup > 1 && experts / nGroup < 2 { throw r.error("group-limited routing needs at least 2 experts per group") }
            let rsf = try r.double(["routed_scaling_factor"]) ?? 1.0
            let scaling = Float(rsf)
            guard scaling.isFinite, scaling > 0 else { throw r.error("routed_scaling_factor must be a positive finite number, got \(rsf)") }
            let latent = try r.optionalInt(["moe_latent_size"])
            if let l = latent, l <= 0 { throw r.error("moe_latent_size must be positive, got \(l)") }
            moe = MoEDims(experts: experts, topK: topK, intermediateSize: try r.positiveInt("moe_intermediate_size"),
                          sharedExperts: shared,
                          sharedIntermediateSize: shared > 0 ? try r.positiveInt("moe_shared_expert_intermediate_size") : 0,
                          nGroup: nGroup, topkGroup: topkGroup,
                          normTopkProb: try r.bool(["norm_topk_prob"]) ?? true,
                          routedScalingFactor: scaling,
                          latentSize: latent)
        }
    }
}

/// Typed field access with error messages that name the field and the file.
struct ConfigReader {
    static let maxInt = 1 << 24
    let object: JSONObject
    let file: String

    func error(_ m: String) -> FormatError { .invalidConfig(file: file, message: m) }

    func value(_ names: [String]) throws(FormatError) -> JSONValue? {
        for n in names { if let v = object[n] { return v } }
        return nil
    }

    func string(_ name: String) throws(FormatError) -> String? {
        guard let v = object[name], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw error("'\(name)' must be a string, got \(v)") }
        return s
    }

    func optionalInt(_ names: [String]) throws(FormatError) -> Int? {
        for n in names {
            guard let v = object[n], !v.isNull else { continue }
            guard let i = v.intValue else { throw error("'\(n)' must be an integer, got \(v)") }
            // Sizes are multiplied together downstream (rows × columns × experts); a typo'd
            // 10^12 must stop here, not overflow an Int somewhere in a kernel.
            guard i.magnitude <= Self.maxInt else { throw error("'\(n)' is \(i), beyond any real model (at most \(Self.maxInt))") }
            return i
        }
        return nil
    }

    func optionalIntOrFirst(_ name: String) throws(FormatError) -> Int? {
        if let a = object[name]?.arrayValue { return a.first?.intValue }
        return try optionalInt([name])
    }

    func positiveInt(_ name: String) throws(FormatError) -> Int {
        guard let i = try optionalInt([name]) else { throw error("missing required field '\(name)'") }
        guard i > 0 else { throw error("'\(name)' must be positive, got \(i)") }
        return i
    }

    func double(_ names: [String]) throws(FormatError) -> Double? {
        for n in names {
            guard let v = object[n], !v.isNull else { continue }
            guard let d = v.doubleValue else { throw error("'\(n)' must be a number, got \(v)") }
            return d
        }
        return nil
    }

    func bool(_ names: [String]) throws(FormatError) -> Bool? {
        for n in names {
            guard let v = object[n], !v.isNull else { continue }
            guard let b = v.boolValue else { throw error("'\(n)' must be true or false, got \(v)") }
            return b
        }
        return nil
    }

    func layerPattern() throws(FormatError) -> [LayerKind] {
        if let v = object["hybrid_override_pattern"], !v.isNull {
            guard let s = v.stringValue else { throw error("'hybrid_override_pattern' must be a string") }
            var out: [LayerKind] = []
            for (i, c) in s.enumerated() {
                guard let k = LayerKind(rawValue: String(c)) else {
                    throw error("hybrid_override_pattern has unknown letter '\(c)' at layer \(i) (expected M, *, - or E)")
                }
                out.append(k)
            }
            return out
        }
        if let v = object["layers_block_type"], !v.isNull {
            guard let a = v.arrayValue else { throw error("'layers_block_type' must be an array of strings") }
            var out: [LayerKind] = []
            for (i, e) in a.enumerated() {
                guard let s = e.stringValue, let k = LayerKind(blockType: s) else {
                    throw error("layers_block_type[\(i)] is \(e), expected one of mamba, attention, mlp, moe, linear_attention, full_attention")
                }
                out.append(k)
            }
            return out
        }
        throw error("no layer pattern: neither 'hybrid_override_pattern' nor 'layers_block_type' is present")
    }
}
