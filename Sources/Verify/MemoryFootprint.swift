import Formats

/// Element type of the attention KV cache; runtimes choose it, so `footprint --kv-dtype` does too.
public enum KVCacheDType: String, CaseIterable, Sendable {
    case bf16, f16, fp8, f32
    public var bytes: Int {
        switch self {
        case .bf16, .f16: return 2
        case .fp8: return 1
        case .f32: return 4
        }
    }
}

/// Memory needed to run a model for `batch` sequences of up to `context` tokens: the weights,
/// the attention layers' KV cache, the Mamba layers' recurrent state, and an activation working
/// set.
public struct MemoryFootprint: Equatable, Sendable {
    public var weights: WeightSizing
    public var context: Int
    public var batch: Int
    public var kvDType: KVCacheDType
    /// Attention layers × 2 (K and V) × kv heads × head_dim × context × batch × dtype bytes.
    public var kvCacheBytes: Int
    /// Mamba layers × (conv_kernel − 1) × conv_dim × batch × 4: the last K − 1 inputs of the
    /// causal conv, FP32.
    public var convStateBytes: Int
    /// Mamba layers × heads × head_dim × state_size × batch × 4: the SSM state, FP32 (servers keep
    /// it FP32; lower precision costs accuracy, docs/nemotron-h.md §5).
    public var ssmStateBytes: Int
    public var activationBytes: Int
    /// Tokens processed per prefill step, which sizes the activations.
    public var prefillChunk: Int

    public var mambaStateBytes: Int { convStateBytes + ssmStateBytes }
    public var totalBytes: Int { weights.bytes + kvCacheBytes + mambaStateBytes + activationBytes }

    public static let defaultPrefillChunk = 512

    /// How `activationBytes` is estimated, for the report.
    public static let activationFormula =
        "4 B × batch × (chunk × (2·hidden + widest layer intermediate) + chunk × context + vocab), chunk = min(context, 512): " +
        "FP32 residual and normed input, the widest layer's intermediates for one prefill chunk " +
        "(Mamba: in_proj out + conv out + y; attention: q, k, v, out; MLP: width; MoE: router + top-k experts + shared), " +
        "one attention head's chunk × context scores (flash-attention runtimes need less), and the last token's logits"

    public init(config c: ModelConfig, weights: WeightSizing, context: Int, batch: Int, kvDType: KVCacheDType = .bf16,
                prefillChunk: Int = MemoryFootprint.defaultPrefillChunk) {
        self.weights = weights
        self.context = context
        self.batch = batch
        self.kvDType = kvDType
        self.prefillChunk = min(context, prefillChunk)
        let attn = c.count(.attention), mamba = c.count(.mamba)
        kvCacheBytes = c.attention.map { a in attn * 2 * a.kvHeads * a.headDim * context * batch * kvDType.bytes } ?? 0
        convStateBytes = c.mamba.map { m in mamba * (m.convKernel - 1) * m.convDim * batch * 4 } ?? 0
        ssmStateBytes = c.mamba.map { m in mamba * m.heads * m.headDim * m.stateSize * batch * 4 } ?? 0
        let chunk = self.prefillChunk
        let scores = attn > 0 ? chunk * context : 0
        activationBytes = 4 * batch * (chunk * (2 * c.hiddenSize + Self.widestIntermediate(c)) + scores + c.vocabSize)
    }

    /// Floats per token of the widest layer's intermediate buffers.
    static func widestIntermediate(_ c: ModelConfig) -> Int {
        var w = 0
        for k in Set(c.layers) {
            switch k {
            case .mamba:
                let m = c.mamba!
                w = max(w, m.inProjRows + m.convDim + m.innerSize)
            case .attention:
                let a = c.attention!
                w = max(w, 2 * a.qRows + 2 * a.kvRows)
            case .mlp:
                w = max(w, c.mlp!.intermediateSize)
            case .moe:
                let e = c.moe!
                w = max(w, e.experts + e.topK * e.intermediateSize + e.sharedIntermediateSize + (e.latentSize ?? 0))
            }
        }
        return w
    }
}
