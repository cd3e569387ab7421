#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Formats

/// Generates Nemotron-H-shaped sharded checkpoints for benchmarks, through `SafetensorsWriter`.
///
/// Tensor names, shapes and order come from `TensorMap.expectedTensors`, so what is generated is
/// exactly what the reader binds. Dtypes follow the released Nemotron-3-Nano checkpoint: BF16,
/// except `A_log`, `D` and the router correction bias in F32.
public struct SyntheticCheckpoint {
    /// Fields of config.json; `ModelConfig(json:)` reads them back.
    public var config: JSONObject
    /// Largest shard, in data bytes (Hugging Face starts a new shard past this size).
    public var shardBytes: Int

    public init(config: JSONObject, shardBytes: Int) {
        self.config = config
        self.shardBytes = shardBytes
    }

    /// Nemotron-3-Nano-30B-A3B dimensions (docs/nemotron-h.md §1.2) with a chosen pattern, expert
    /// count and vocabulary.
    public static func nano3(pattern: String, experts: Int, vocab: Int, shardBytes: Int) -> SyntheticCheckpoint {
        let c: JSONObject = [
            "architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h",
            "hidden_size": 2688, "vocab_size": .int(vocab), "num_hidden_layers": .int(pattern.count),
            "hybrid_override_pattern": .string(pattern),
            "num_attention_heads": 32, "num_key_value_heads": 2, "head_dim": 128,
            "mamba_num_heads": 64, "mamba_head_dim": 64, "n_groups": 8, "ssm_state_size": 128,
            "conv_kernel": 4, "chunk_size": 128, "use_conv_bias": true,
            "intermediate_size": 1856, "mlp_hidden_act": "relu2",
            "n_routed_experts": .int(experts), "num_experts_per_tok": .int(min(6, experts)),
            "moe_intermediate_size": 1856, "n_shared_experts": 1, "moe_shared_expert_intermediate_size": 3712,
            "n_group": 1, "topk_group": 1, "norm_topk_prob": true, "routed_scaling_factor": 2.5,
            "layer_norm_epsilon": 1e-5, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
        ]
        return SyntheticCheckpoint(config: c, shardBytes: shardBytes)
    }

    /// The released model's layer pattern (52 layers: 23 Mamba, 23 MoE, 6 attention).
    public static let nano3Pattern = "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME"

    public func modelConfig() throws(FormatError) -> ModelConfig {
        try ModelConfig(json: .object(config), file: "synthetic config.json")
    }

    /// Every tensor of the model in model order, named as the hub checkpoints name them.
    public func tensors() throws(FormatError) -> [TensorDeclaration] {
        let c = try modelConfig()
        func dtype(_ r: TensorRole) -> DType {
            switch r {
            case .mambaALog, .mambaD, .routerBias: return .f32
            default: return .bf16
            }
        }
        func decl(_ r: TensorRole, _ l: Int?, _ e: Int?, _ shape: [Int]) -> TensorDeclaration {
            TensorDeclaration(name: (r == .lmHead ? "" : "backbone.") + r.hubName(layer: l, expert: e), dtype: dtype(r), shape: shape)
        }
        var out = [decl(.embedding, nil, nil, [c.vocabSize, c.hiddenSize])]
        for l in 0..<c.layers.count {
            for t in TensorMap.expectedTensors(of: c, layer: l) { out.append(decl(t.role, l, t.expert, t.shape)) }
        }
        out.append(decl(.finalNorm, nil, nil, [c.hiddenSize]))
        out.append(decl(.lmHead, nil, nil, [c.vocabSize, c.hiddenSize]))
        return out
    }

    public struct Written: Sendable {
        public var directory: String
        public var files: [String]
        public var tensorCount: Int
        public var dataBytes: Int
        public var shards: Int
    }

    /// Writes config.json, the shards and model.safetensors.index.json into `directory` (which
    /// must exist). With `materialize` false the tensor data is left as holes: the files have
    /// their full logical size but take no disk space — enough to measure opening and validating
    /// a checkpoint, which never touches tensor data.
    public func write(to directory: String, materialize: Bool,
                      progress: (Int, Int) -> Void = { _, _ in }) throws(FormatError) -> Written {
        let decls = try tensors()
        var shards: [[TensorDeclaration]] = [[]]
        var size = 0
        for d in decls {
            if size > 0 && size + d.byteCount > shardBytes { shards.append([]); size = 0 }
            shards[shards.count - 1].append(d)
            size += d.byteCount
        }
        let total = decls.reduce(0) { $0 + $1.byteCount }
        var files: [String] = []
        let configPath = join(directory, "config.json")
        try writeFileAtomically(configPath, contents: JSONWriter.bytes(.object(config), options: .init(pretty: true)))
        files.append(configPath)

        let chunk = 1 << 23
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }
        var rng = XorShift(seed: 0x9E37_79B9_7F4A_7C15)
        var weightMap = JSONObject()
        var done = 0
        for (i, list) in shards.enumerated() {
            let name = "model-\(fiveDigits(i + 1))-of-\(fiveDigits(shards.count)).safetensors"
            let path = join(directory, name)
            files.append(path)
            let w = try SafetensorsWriter(path: path, tensors: list, metadata: ["format": "pt"])
            for d in list {
                weightMap[d.name] = .string(name)
                var left = d.byteCount
                while left > 0 {
                    let n = min(chunk, left)
                    if materialize {
                        rng.fill(buffer, bytes: n, dtype: d.dtype)
                        try w.write(d.name, bytes: UnsafeRawBufferPointer(start: buffer, count: n))
                    } else {
                        try w.writeZeros(d.name, count: n)
                    }
                    left -= n
                    done += n
                }
                progress(done, total)
            }
            try w.finish()
        }
        let index: JSONValue = ["metadata": ["total_size": .int(total)], "weight_map": .object(weightMap)]
        let indexPath = join(directory, "model.safetensors.index.json")
        try writeFileAtomically(indexPath, contents: JSONWriter.bytes(index, options: .init(pretty: true)))
        files.append(indexPath)
        return Written(directory: directory, files: files, tensorCount: decls.count, dataBytes: total, shards: shards.count)
    }
}

private func fiveDigits(_ n: Int) -> String {
    let s = String(n)
    return String(repeating: "0", count: max(0, 5 - s.count)) + s
}

/// xorshift64: fast enough (several GB/s) that generating data never hides the disk's speed.
struct XorShift {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x2545_F491_4F6C_DD1D : seed }

    @inline(__always) mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    /// Fills `bytes` with weight-like values: random sign and mantissa, magnitudes in [2^-9, 2^-7),
    /// never NaN or infinite (so a conversion benchmark measures the common path).
    mutating func fill(_ p: UnsafeMutableRawPointer, bytes n: Int, dtype: DType) {
        switch dtype {
        case .bf16:
            let words = n / 8
            let q = p.bindMemory(to: UInt64.self, capacity: words)
            for i in 0..<words { q[i] = Self.weights(next()) }
            for i in (words * 8)..<n { p.storeBytes(of: UInt8(truncatingIfNeeded: next()), toByteOffset: i, as: UInt8.self) }
        case .f32:
            let count = n / 4
            let q = p.bindMemory(to: UInt32.self, capacity: count)
            for i in 0..<count { q[i] = UInt32(truncatingIfNeeded: Self.weights(next())) << 16 }
        default:
            for i in 0..<n { p.storeBytes(of: UInt8(truncatingIfNeeded: next()), toByteOffset: i, as: UInt8.self) }
        }
    }

    /// Four BF16 values from 64 random bits: keep sign, mantissa and the exponent's lowest bit,
    /// force the rest of the exponent to 0x76 (so 0x76 or 0x77).
    @inline(__always) static func weights(_ r: UInt64) -> UInt64 {
        (r & 0x81FF_81FF_81FF_81FF) | 0x3B00_3B00_3B00_3B00
    }
}
