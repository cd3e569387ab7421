#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Nemotron-H ↔ GGUF mapping: what llama.cpp's `nemotron_h` / `nemotron_h_moe` architectures
/// expect, learned from llama.cpp's converter (conversion/nemotron.py, granite.py, mamba.py) and
/// its loader (src/llama-model.cpp), written down here once for the writer and the reader.
///
/// - Architecture: `nemotron_h_moe` when the model has MoE layers, else `nemotron_h` — decided
///   from `ModelConfig`'s layers, never from leftover config keys (llama.cpp's converter looks for
///   `num_experts_per_tok` and so writes a dense model with MoE leftovers as `nemotron_h_moe`).
/// - Tensors (ggml dims, fastest first; H hidden, E experts): `token_embd` [H, V], `output_norm`,
///   `output`, per block N `blk.N.attn_norm` (every block's pre-norm), Mamba `ssm_in`,
///   `ssm_conv1d` [K, C] (squeezed), `ssm_conv1d.bias`, `ssm_a` [1, Hm] = −exp(A_log),
///   `ssm_d` [1, Hm], `ssm_dt.bias` [Hm], `ssm_norm` [I/G, G], `ssm_out`; attention `attn_q/k/v`,
///   `attn_output` (Q and K rows permuted per head as llama.cpp's converter does, `GGUFRowPermutation`); MLP `ffn_up/down`; MoE `ffn_gate_inp` (router), `exp_probs_b.bias`
///   (correction bias), `ffn_up_exps` / `ffn_down_exps` [in, out, E] (experts stacked),
///   `ffn_up_shexp` / `ffn_down_shexp`.
/// - Metadata: per-layer arrays where layers differ (feed_forward_length, head_count_kv), the SSM
///   sizes, the MoE routing constants (docs/GGUF.md lists every key).
public enum NemotronHGGUF {
    public static let denseArchitecture = "nemotron_h"
    public static let moeArchitecture = "nemotron_h_moe"

    public static func architecture(of c: ModelConfig) -> String {
        c.layers.contains(.moe) ? moeArchitecture : denseArchitecture
    }

    // MARK: Names

    /// GGUF name and ggml dims of one converter tensor, and its slot when experts are stacked.
    public static func placement(_ t: SinkTensor, config c: ModelConfig) throws(FormatError) -> GGUFPlacement {
        func ne(_ shape: [Int]) -> [Int] { shape.reversed() }
        func blk(_ s: String) -> String { "blk.\(t.layer ?? -1).\(s)" }
        let shape = t.shape
        switch t.role {
        case .embedding: return GGUFPlacement(name: "token_embd.weight", dims: ne(shape))
        case .lmHead: return GGUFPlacement(name: "output.weight", dims: ne(shape))
        case .finalNorm: return GGUFPlacement(name: "output_norm.weight", dims: ne(shape))
        case .layerNorm: return GGUFPlacement(name: blk("attn_norm.weight"), dims: ne(shape))
        case .mambaInProj: return GGUFPlacement(name: blk("ssm_in.weight"), dims: ne(shape))
        case .mambaConvWeight: return GGUFPlacement(name: blk("ssm_conv1d.weight"), dims: [shape.last!, shape[0]])
        case .mambaConvBias: return GGUFPlacement(name: blk("ssm_conv1d.bias"), dims: ne(shape))
        case .mambaALog: return GGUFPlacement(name: blk("ssm_a"), dims: [1, shape[0]], transform: .negExp)
        case .mambaD: return GGUFPlacement(name: blk("ssm_d"), dims: [1, shape[0]])
        case .mambaDtBias: return GGUFPlacement(name: blk("ssm_dt.bias"), dims: ne(shape))
        case .mambaNorm:
            let g = c.mamba?.groups ?? 1
            return GGUFPlacement(name: blk("ssm_norm.weight"), dims: [shape[0] / g, g])
        case .mambaOutProj: return GGUFPlacement(name: blk("ssm_out.weight"), dims: ne(shape))
        case .attnQ: return GGUFPlacement(name: blk("attn_q.weight"), dims: ne(shape), permutedHeads: c.attention?.heads)
        case .attnK: return GGUFPlacement(name: blk("attn_k.weight"), dims: ne(shape), permutedHeads: c.attention?.kvHeads)
        case .attnV: return GGUFPlacement(name: blk("attn_v.weight"), dims: ne(shape))
        case .attnO: return GGUFPlacement(name: blk("attn_output.weight"), dims: ne(shape))
        case .mlpUp: return GGUFPlacement(name: blk("ffn_up.weight"), dims: ne(shape))
        case .mlpDown: return GGUFPlacement(name: blk("ffn_down.weight"), dims: ne(shape))
        case .routerWeight: return GGUFPlacement(name: blk("ffn_gate_inp.weight"), dims: ne(shape))
        case .routerBias: return GGUFPlacement(name: blk("exp_probs_b.bias"), dims: ne(shape))
        case .expertUp, .expertDown:
            let e = c.moe?.experts ?? 1
            let n = t.role == .expertUp ? "ffn_up_exps.weight" : "ffn_down_exps.weight"
            return GGUFPlacement(name: blk(n), dims: ne(shape) + [e], slot: t.expert ?? 0, slots: e)
        case .sharedUp: return GGUFPlacement(name: blk("ffn_up_shexp.weight"), dims: ne(shape))
        case .sharedDown: return GGUFPlacement(name: blk("ffn_down_shexp.weight"), dims: ne(shape))
        case .latentIn, .latentOut:
            throw FormatError.unsupported(file: t.name, tensor: t.name, message: "MoE latent projections (moe_latent_size) are not mapped to GGUF yet")
        }
    }

    /// The role, layer and value transform of a GGUF tensor name (the inverse of `placement`);
    /// nil for a name this architecture does not have.
    public static func role(of name: String) -> (role: TensorRole, layer: Int?, stacked: Bool, transform: GGUFValueTransform?)? {
        switch name {
        case "token_embd.weight": return (.embedding, nil, false, nil)
        case "output.weight": return (.lmHead, nil, false, nil)
        case "output_norm.weight": return (.finalNorm, nil, false, nil)
        default: break
        }
        guard name.hasPrefix("blk.") else { return nil }
        let rest = name.dropFirst(4)
        guard let dot = rest.firstIndex(of: "."), let l = Int(rest[..<dot]), l >= 0 else { return nil }
        let suffix = String(rest[rest.index(after: dot)...])
        let table: [String: (TensorRole, Bool, GGUFValueTransform?)] = [
            "attn_norm.weight": (.layerNorm, false, nil), "ssm_in.weight": (.mambaInProj, false, nil),
            "ssm_conv1d.weight": (.mambaConvWeight, false, nil), "ssm_conv1d.bias": (.mambaConvBias, false, nil),
            "ssm_a": (.mambaALog, false, .negExp), "ssm_d": (.mambaD, false, nil), "ssm_dt.bias": (.mambaDtBias, false, nil),
            "ssm_norm.weight": (.mambaNorm, false, nil), "ssm_out.weight": (.mambaOutProj, false, nil),
            "attn_q.weight": (.attnQ, false, nil), "attn_k.weight": (.attnK, false, nil), "attn_v.weight": (.attnV, false, nil),
            "attn_output.weight": (.attnO, false, nil), "ffn_up.weight": (.mlpUp, false, nil), "ffn_down.weight": (.mlpDown, false, nil),
            "ffn_gate_inp.weight": (.routerWeight, false, nil), "exp_probs_b.bias": (.routerBias, false, nil),
            "ffn_up_exps.weight": (.expertUp, true, nil), "ffn_down_exps.weight": (.expertDown, true, nil),
            "ffn_up_shexp.weight": (.sharedUp, false, nil), "ffn_down_shexp.weight": (.sharedDown, false, nil),
        ]
        guard let r = table[suffix] else { return nil }
        return (r.0, l, r.1, r.2)
    }

    // MARK: Metadata

    /// The architecture keys llama.cpp's converter writes for this model (without `general.*`
    /// and `tokenizer.*`), with its value types: per-layer arrays are INT32, sizes UINT32.
    /// `ropeTheta` is config.json's `rope_theta` when it has one (written as llama.cpp does,
    /// although these models use no RoPE).
    public static func metadata(_ c: ModelConfig, ropeTheta: Double?) -> [(key: String, value: GGUFValue)] {
        let a = architecture(of: c)
        var m: [(String, GGUFValue)] = []
        func add(_ k: String, _ v: GGUFValue) { m.append(("\(a).\(k)", v)) }
        func u32(_ x: Int) -> GGUFValue { .u32(UInt32(x)) }
        func perLayer(_ f: (LayerKind) -> Int) -> GGUFValue { .array(.i32, c.layers.map { .i32(Int32(f($0))) }) }
        let hasSSM = c.layers.contains(.mamba)
        add("vocab_size", u32(c.vocabSize))
        add("block_count", u32(c.layers.count))
        // Hybrid models without RoPE are told a context of 2^20, as llama.cpp's converter does.
        add("context_length", u32(1 << 20))
        add("embedding_length", u32(c.hiddenSize))
        if let e = c.moe {
            add("feed_forward_length", perLayer { $0 == .moe ? e.intermediateSize : 0 })
        } else {
            let f = c.mlp?.intermediateSize ?? 0
            add("feed_forward_length", perLayer { $0 == .mlp ? f : 0 })
        }
        let at = c.attention
        add("attention.head_count", u32(at?.heads ?? 0))
        add("attention.head_count_kv", perLayer { $0 == .attention ? at?.kvHeads ?? 0 : 0 })
        if let at {
            add("attention.key_length", u32(at.headDim))
            add("attention.value_length", u32(at.headDim))
            add("rope.dimension_count", u32(at.headDim))
        }
        if let t = ropeTheta { add("rope.freq_base", .f32(Float(t))) }
        add("attention.layer_norm_epsilon", .f32(c.normEps))
        if let mb = c.mamba {
            add("ssm.conv_kernel", u32(mb.convKernel))
            add("ssm.state_size", u32(mb.stateSize))
            add("ssm.group_count", u32(mb.groups))
            add("ssm.inner_size", u32(mb.innerSize))
            add("ssm.time_step_rank", u32(mb.heads))
        }
        add("rope.scaling.finetuned", .bool(!hasSSM))
        if let e = c.moe {
            add("expert_used_count", u32(e.topK))
            add("expert_feed_forward_length", u32(e.intermediateSize))
            add("expert_shared_feed_forward_length", u32(e.sharedIntermediateSize))
            add("expert_count", u32(e.experts))
            add("expert_shared_count", u32(e.sharedExperts))
            add("expert_weights_norm", .bool(e.normTopkProb))
            add("expert_weights_scale", .f32(e.routedScalingFactor))
            add("expert_group_count", u32(e.nGroup))
            add("expert_group_used_count", u32(e.topkGroup))
        }
        // What our forward pass needs that llama.cpp's keys do not carry (llama.cpp ignores keys
        // it does not know): Δ's clamp and the scan's chunk size, so a model read back from the
        // file computes exactly what the checkpoint does.
        if let mb = c.mamba {
            m.append(("nemo_convert.ssm.time_step_limit", .array(.f32, [.f32(mb.timeStepLimit.0), .f32(mb.timeStepLimit.1)])))
            m.append(("nemo_convert.ssm.chunk_size", u32(mb.chunkSize)))
        }
        return m
    }

    /// llama.cpp's `general.file_type` (LLAMA_FTYPE) for a file whose bulk is `type`.
    public static func fileType(_ type: GGMLType) -> UInt32? {
        switch type {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q4_1: return 3
        case .q8_0: return 7
        case .q5_0: return 8
        case .q5_1: return 9
        case .iq4_nl: return 25
        case .bf16: return 32
        case .mxfp4: return 38
        default: return nil
        }
    }

    /// Rebuilds the model description from a GGUF file's metadata, as the config.json it came from
    /// would describe it (through `ModelConfig(json:)`, so the same checks apply); errors name the key.
    public static func config(from f: GGUFFile) throws(FormatError) -> ModelConfig {
        try ModelConfig(json: .object(try configJSON(from: f)), file: f.path)
    }

    /// The config.json fields `config(from:)` reads, rebuilt from the metadata (what a packed file
    /// converted from a GGUF file stores as its model config).
    public static func configJSON(from f: GGUFFile) throws(FormatError) -> JSONObject {
        func fail(_ m: String) -> FormatError { .invalidGGUF(file: f.path, message: m) }
        guard let arch = f.value("general.architecture")?.stringValue else { throw fail("no 'general.architecture' key") }
        guard arch == denseArchitecture || arch == moeArchitecture else {
            throw FormatError.unsupported(file: f.path, tensor: nil, message: "architecture '\(arch)' is not Nemotron-H (\(denseArchitecture) or \(moeArchitecture))")
        }
        func value(_ k: String) throws(FormatError) -> GGUFValue {
            guard let v = f.value("\(arch).\(k)") else { throw fail("missing key '\(arch).\(k)'") }
            return v
        }
        func int(_ k: String) throws(FormatError) -> Int {
            guard let i = try value(k).intValue, i >= 0, i <= 1 << 24 else { throw fail("key '\(arch).\(k)' must be an integer in 0...2^24, got \(try value(k))") }
            return i
        }
        func optInt(_ k: String) throws(FormatError) -> Int? { f.value("\(arch).\(k)") == nil ? nil : try int(k) }
        func perLayer(_ k: String, _ n: Int) throws(FormatError) -> [Int] {
            let v = try value(k)
            if let a = v.arrayValue {
                guard a.count == n else { throw fail("key '\(arch).\(k)' has \(a.count) entries for \(n) blocks") }
                var out: [Int] = []
                for (i, e) in a.enumerated() {
                    guard let x = e.intValue, x >= 0, x <= 1 << 24 else { throw fail("key '\(arch).\(k)'[\(i)] is \(e)") }
                    out.append(x)
                }
                return out
            }
            return [Int](repeating: try int(k), count: n)
        }
        let n = try int("block_count")
        guard n > 0 else { throw fail("key '\(arch).block_count' is 0") }
        let ff = try perLayer("feed_forward_length", n)
        let kv = try perLayer("attention.head_count_kv", n)
        let isMoE = arch == moeArchitecture
        var types: [JSONValue] = []
        for l in 0..<n {
            if kv[l] > 0 { types.append("attention") } else if ff[l] > 0 { types.append(isMoE ? "moe" : "mlp") } else { types.append("mamba") }
        }
        guard let vocab = f.value("tokenizer.ggml.tokens")?.arrayValue?.count ?? f.tensor("token_embd.weight")?.dims.last else {
            throw fail("no vocabulary: neither 'tokenizer.ggml.tokens' nor token_embd.weight")
        }
        var o: JSONObject = [
            "model_type": "nemotron_h", "layers_block_type": .array(types),
            "hidden_size": .int(try int("embedding_length")), "vocab_size": .int(vocab),
            "tie_word_embeddings": .bool(f.tensor("output.weight") == nil),
        ]
        guard let eps = try value("attention.layer_norm_epsilon").doubleValue else { throw fail("key '\(arch).attention.layer_norm_epsilon' is not a number") }
        o["layer_norm_epsilon"] = .number(Double(Float(eps)))
        if let b = f.value("tokenizer.ggml.bos_token_id")?.intValue { o["bos_token_id"] = .int(b) }
        if let e = f.value("tokenizer.ggml.eos_token_id")?.intValue { o["eos_token_id"] = .int(e) }
        if types.contains("mamba") {
            let heads = try int("ssm.time_step_rank"), inner = try int("ssm.inner_size")
            guard heads > 0, inner % heads == 0 else { throw fail("ssm.inner_size \(inner) is not a multiple of ssm.time_step_rank \(heads)") }
            o["mamba_num_heads"] = .int(heads)
            o["mamba_head_dim"] = .int(inner / heads)
            o["n_groups"] = .int(try int("ssm.group_count"))
            o["ssm_state_size"] = .int(try int("ssm.state_size"))
            o["conv_kernel"] = .int(try int("ssm.conv_kernel"))
            o["use_conv_bias"] = .bool(f.tensors.contains { $0.name.hasSuffix(".ssm_conv1d.bias") })
            if let lim = f.value("nemo_convert.ssm.time_step_limit")?.arrayValue, lim.count == 2,
               let lo = lim[0].doubleValue, let hi = lim[1].doubleValue {
                o["time_step_limit"] = .array([.number(lo), .number(hi)])
            }
            if let cs = f.value("nemo_convert.ssm.chunk_size")?.intValue { o["chunk_size"] = .int(cs) }
        }
        if types.contains("attention") {
            o["num_attention_heads"] = .int(try int("attention.head_count"))
            o["num_key_value_heads"] = .int(kv.first { $0 > 0 }!)
            if let d = try optInt("attention.key_length") { o["head_dim"] = .int(d) }
        }
        if types.contains("mlp") { o["intermediate_size"] = .int(ff.first { $0 > 0 }!) }
        if types.contains("moe") {
            o["n_routed_experts"] = .int(try int("expert_count"))
            o["num_experts_per_tok"] = .int(try int("expert_used_count"))
            o["moe_intermediate_size"] = .int(try optInt("expert_feed_forward_length") ?? ff.first { $0 > 0 }!)
            o["n_shared_experts"] = .int(try optInt("expert_shared_count") ?? 0)
            o["moe_shared_expert_intermediate_size"] = .int(try optInt("expert_shared_feed_forward_length") ?? 0)
            o["n_group"] = .int(try optInt("expert_group_count") ?? 1)
            o["topk_group"] = .int(try optInt("expert_group_used_count") ?? 1)
            o["norm_topk_prob"] = .bool(f.value("\(arch).expert_weights_norm")?.boolValue ?? false)
            if let s = f.value("\(arch).expert_weights_scale")?.doubleValue { o["routed_scaling_factor"] = .number(Double(Float(s))) }
            if let g = f.value("\(arch).expert_gating_func")?.intValue, g != 2 {
                throw FormatError.unsupported(file: f.path, tensor: nil, message: "expert_gating_func \(g): only sigmoid routing (2) is Nemotron-H's")
            }
        }
        return o
    }
}

extension NemotronHGGUF {
    /// Every key of a GGUF file written from `map`: `general.*` as llama.cpp's converter writes
    /// them (name from the model directory, size label from the parameter counts, file type),
    /// the architecture's keys, then the tokenizer's (`GGUFVocabulary`).
    public static func fileMetadata(map: TensorMap, ropeTheta: Double?, modelName: String, fileType: UInt32,
                                    tokenizer: [(key: String, value: GGUFValue)]) -> [(key: String, value: GGUFValue)] {
        let c = map.config
        var m: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string(architecture(of: c))), ("general.type", .string("model")),
            ("general.name", .string(displayName(modelName))),
            ("general.size_label", .string(sizeLabel(map))),
            ("general.file_type", .u32(fileType)), ("general.quantization_version", .u32(2)),
        ]
        m += metadata(c, ropeTheta: ropeTheta)
        m += tokenizer
        return m
    }

    /// llama.cpp's default `general.name` from a directory name: words split at - and _, each
    /// capitalised ("nemotron-h-tiny-moe" → "Nemotron H Tiny Moe").
    public static func displayName(_ dir: String) -> String {
        let base = dir.split(separator: "/").last.map(String.init) ?? dir
        return base.split(whereSeparator: { $0 == "-" || $0 == "_" }).map { w in w.prefix(1).uppercased() + w.dropFirst() }.joined(separator: " ")
    }

    /// llama.cpp's `general.size_label`: total parameters in rounded notation ("6.2M"), or for
    /// MoE "E×(shared + one expert's)" ("16x5.0M"), counted over the tensors as GGUF stores them.
    public static func sizeLabel(_ map: TensorMap) -> String {
        var total = 0, expertElems = 0
        for t in map.tensors {
            if t.role == .lmHead && map.config.tieWordEmbeddings { continue }
            total += t.data.elementCount
            if t.role == .expertUp || t.role == .expertDown { expertElems += t.data.elementCount }
        }
        guard let e = map.config.moe?.experts, expertElems > 0 else { return roundedCount(total) }
        // Σ over the stacked tensors of (size / E) = the routed elements / E.
        return "\(e)x" + roundedCount(total - expertElems + expertElems / e)
    }

    /// gguf-py's `model_weight_count_rounded_notation` with two significant digits at least.
    static func roundedCount(_ n: Int) -> String {
        let d = Double(n)
        let (x, suffix): (Double, String) = d > 1e12 ? (d * 1e-12, "T") : d > 1e9 ? (d * 1e-9, "B") : d > 1e6 ? (d * 1e-6, "M") : (d * 1e-3, "K")
        let digits = String(Int(x.rounded(.toNearestOrEven))).drop { $0 == "0" }.count
        let fix = max(2 - digits, 0)
        return formatFixed(x, fix) + suffix
    }

    /// x with `fix` decimals, rounded half to even on the binary value (as printf and Python do).
    static func formatFixed(_ x: Double, _ fix: Int) -> String {
        var p = 1.0
        for _ in 0..<fix { p *= 10 }
        let scaled = (x * p).rounded(.toNearestOrEven)
        let i = Int(scaled)
        guard fix > 0 else { return String(i) }
        var frac = String(i % Int(p))
        while frac.count < fix { frac = "0" + frac }
        return "\(i / Int(p)).\(frac)"
    }
}
