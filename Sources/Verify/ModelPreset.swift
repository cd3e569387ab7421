import Formats

/// The released Nemotron-H models, described by their config.json fields so `footprint` can size
/// them without downloading weights. Dimensions from docs/nemotron-h.md §1.2 (the
/// Megatron-Bridge providers and published config.json files).
public enum ModelPreset: String, CaseIterable, Sendable {
    case nemotron3Nano30bA3b = "nemotron-3-nano-30b-a3b"
    case nemotronNano9bV2 = "nemotron-nano-9b-v2"
    case nemotronNano12bV2 = "nemotron-nano-12b-v2"
    case nemotronH8b = "nemotron-h-8b"

    /// The model's config.json, with only the fields that size tensors and state.
    public var configJSON: JSONValue {
        switch self {
        case .nemotron3Nano30bA3b:
            return Self.common(hidden: 2688, pattern: "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME",
                               heads: 32, kvHeads: 2, mambaHeads: 64, mambaHeadDim: 64, mlp: 1856,
                               moe: ["n_routed_experts": 128, "num_experts_per_tok": 6, "moe_intermediate_size": 1856,
                                     "n_shared_experts": 1, "moe_shared_expert_intermediate_size": 3712,
                                     "n_group": 1, "topk_group": 1, "norm_topk_prob": true, "routed_scaling_factor": 2.5])
        case .nemotronNano9bV2:
            return Self.common(hidden: 4480, pattern: "M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-",
                               heads: 40, kvHeads: 8, mambaHeads: 128, mambaHeadDim: 80, mlp: 15680)
        case .nemotronNano12bV2:
            return Self.common(hidden: 5120, pattern: "M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M-",
                               heads: 40, kvHeads: 8, mambaHeads: 128, mambaHeadDim: 80, mlp: 20480)
        case .nemotronH8b:
            return Self.common(hidden: 4096, pattern: "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-",
                               heads: 32, kvHeads: 8, mambaHeads: 128, mambaHeadDim: 64, mlp: 21504)
        }
    }

    public var config: ModelConfig {
        // The literals above are valid configs; a failure here is a programming error.
        do { return try ModelConfig(json: configJSON, file: "preset \(rawValue)") } catch { fatalError("\(error)") }
    }

    /// Every tensor of the released checkpoint with the dtype it is published in: BF16, except
    /// A_log, D and the router's correction bias, which are F32 (docs/nemotron-h.md §2.1; the
    /// recipes keep A_log, D and the router in F32 whatever the source says).
    public var tensors: [TensorEntry] { TensorEntry.released(config) }

    private static func common(hidden: Int, pattern: String, heads: Int, kvHeads: Int, mambaHeads: Int, mambaHeadDim: Int,
                               mlp: Int, moe: JSONObject = [:]) -> JSONValue {
        var o: JSONObject = [
            "model_type": "nemotron_h", "vocab_size": 131072, "hidden_size": .int(hidden),
            "hybrid_override_pattern": .string(pattern), "layer_norm_epsilon": 1e-5, "tie_word_embeddings": false,
            "num_attention_heads": .int(heads), "num_key_value_heads": .int(kvHeads), "head_dim": 128,
            "mamba_num_heads": .int(mambaHeads), "mamba_head_dim": .int(mambaHeadDim), "n_groups": 8,
            "ssm_state_size": 128, "conv_kernel": 4, "chunk_size": 128, "use_conv_bias": true,
            "intermediate_size": .int(mlp), "mlp_hidden_act": "relu2",
        ]
        for (k, v) in moe { o[k] = v }
        return .object(o)
    }
}

/// One tensor as `footprint` sizes it: where it sits in the model, its shape and source dtype.
public struct TensorEntry: Equatable, Sendable {
    public var name: String
    public var role: TensorRole
    public var layer: Int?
    public var expert: Int?
    public var shape: [Int]
    public var dtype: DType

    public var elementCount: Int { shape.reduce(1, *) }

    /// The full tensor list of a model with this config, named as the hub names it.
    public static func released(_ c: ModelConfig) -> [TensorEntry] {
        func dtype(_ r: TensorRole) -> DType { r == .mambaALog || r == .mambaD || r == .routerBias ? .f32 : .bf16 }
        func entry(_ r: TensorRole, _ l: Int?, _ e: Int?, _ shape: [Int]) -> TensorEntry {
            TensorEntry(name: (r == .lmHead ? "" : "backbone.") + r.hubName(layer: l, expert: e), role: r, layer: l, expert: e,
                        shape: shape, dtype: dtype(r))
        }
        var out = [entry(.embedding, nil, nil, [c.vocabSize, c.hiddenSize])]
        for l in 0..<c.layers.count {
            for t in TensorMap.expectedTensors(of: c, layer: l) { out.append(entry(t.role, l, t.expert, t.shape)) }
        }
        out.append(entry(.finalNorm, nil, nil, [c.hiddenSize]))
        if !c.tieWordEmbeddings { out.append(entry(.lmHead, nil, nil, [c.vocabSize, c.hiddenSize])) }
        return out
    }
}
