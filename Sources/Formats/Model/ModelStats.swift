/// Parameter and storage counts of a bound model.
public struct ModelStats: Equatable, Sendable {
    /// Learned parameters, as `sum(p.numel() for p in model.parameters())` counts them in transformers.
    /// The router's `e_score_correction_bias` is excluded: transformers registers it as a buffer
    /// (it is updated by load balancing, not by gradients), so it is counted in `bufferElements`
    /// and in the bytes, but not here. A tied lm_head is the embedding and is counted once.
    public let parameters: Int
    /// Parameters one token passes through: everything except the routed experts, plus `topK` of
    /// them in each MoE layer. Equal to `parameters` for dense models.
    public let activeParameters: Int
    /// Elements of non-parameter buffers (router correction biases).
    public let bufferElements: Int
    /// Stored bytes per dtype, over every tensor in the files (bound, unexpected or skipped).
    public let bytesByDType: [DType: Int]

    public var totalBytes: Int { bytesByDType.values.reduce(0, +) }

    /// Dtypes with stored bytes, largest first (ties by name) — the order a report lists them.
    public var dtypesBySize: [(dtype: DType, bytes: Int)] {
        bytesByDType.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.rawValue < $1.key.rawValue }
            .map { ($0.key, $0.value) }
    }

    public init(parameters: Int, activeParameters: Int, bufferElements: Int, bytesByDType: [DType: Int]) {
        self.parameters = parameters
        self.activeParameters = activeParameters
        self.bufferElements = bufferElements
        self.bytesByDType = bytesByDType
    }

    /// Counts parameters from the bound tensors and bytes from `stored`, the tensors actually in
    /// the files (a stacked expert tensor is one stored tensor but many bound slices).
    public init(map: TensorMap, stored: [TensorInfo]) {
        var params = 0, buffers = 0
        var routed: [Int: (sum: Int, count: Int)] = [:]
        let embeddingSource = map.tensor(.embedding)?.source
        for t in map.tensors {
            let n = t.data.elementCount
            switch t.role {
            case .routerBias:
                buffers += n
                continue
            case .lmHead where t.source == embeddingSource:
                continue
            case .expertUp, .expertDown:
                let l = t.layer ?? -1
                var r = routed[l] ?? (0, 0)
                r.sum += n
                if t.role == .expertUp { r.count += 1 }
                routed[l] = r
            default: break
            }
            params += n
        }
        var active = params
        let topK = map.config.moe?.topK ?? 0
        for (_, r) in routed where r.count > 0 {
            // Every expert of a layer has the same shape (TensorMap checks it), so the division is exact.
            active += r.sum / r.count * topK - r.sum
        }
        var bytes: [DType: Int] = [:]
        for t in stored { bytes[t.dtype, default: 0] += t.byteCount }
        self.init(parameters: params, activeParameters: active, bufferElements: buffers, bytesByDType: bytes)
    }

    public init(checkpoint: Checkpoint, map: TensorMap) {
        self.init(map: map, stored: checkpoint.tensorNames.compactMap { checkpoint.info($0) })
    }
}
