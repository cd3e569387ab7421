/// Everything `nemo-convert inspect` shows about a model, independent of how it is printed.
///
/// Built from a safetensors checkpoint today. A packed (quantized) file will get its own
/// initializer filling the same fields — `format` says which one it came from, and per-tensor
/// `dtype` strings are free-form so quantized encodings can be named — so the printers need not change.
public struct ModelReport: Sendable {
    public struct Row: Equatable, Sendable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        /// nil for tensors the model does not use.
        public var role: TensorRole?
        public var layer: Int?
        /// Why a tensor has no role: "unexpected" (nothing bound to it) or "skipped" (`mtp.*`).
        public var note: String?

        public init(name: String, dtype: String, shape: [Int], role: TensorRole?, layer: Int?, note: String?) {
            self.name = name; self.dtype = dtype; self.shape = shape; self.role = role; self.layer = layer; self.note = note
        }
    }

    public var path: String
    /// "safetensors" (a model directory or .safetensors file); a packed format will add its own.
    public var format: String
    public var fileCount: Int
    public var config: ModelConfig
    public var stats: ModelStats
    /// Stored tensors in model order (embedding, layer by layer, final norm, lm_head), then the
    /// unexpected and skipped ones.
    public var rows: [Row]

    public init(path: String, format: String, fileCount: Int, config: ModelConfig, stats: ModelStats, rows: [Row]) {
        self.path = path; self.format = format; self.fileCount = fileCount
        self.config = config; self.stats = stats; self.rows = rows
    }

    public init(checkpoint ck: Checkpoint, map: TensorMap) {
        var rows: [Row] = []
        var seen = Set<String>()
        func row(_ name: String, role: TensorRole?, layer: Int?, note: String?) {
            guard seen.insert(name).inserted, let info = ck.info(name) else { return }
            rows.append(Row(name: name, dtype: info.dtype.rawValue, shape: info.shape, role: role, layer: layer, note: note))
        }
        for t in map.tensors { row(t.source, role: t.role, layer: t.layer, note: nil) }
        for n in map.unexpected { row(n, role: nil, layer: nil, note: "unexpected") }
        for n in map.skipped { row(n, role: nil, layer: nil, note: "skipped") }
        for n in map.scales { row(n, role: nil, layer: nil, note: "scale") }
        for n in map.runtimeOnly { row(n, role: nil, layer: nil, note: "runtime scale") }
        self.init(path: ck.directory, format: "safetensors" + (map.quantization.map { " (\($0.summary))" } ?? ""), fileCount: ck.files.count, config: ck.config,
                  stats: ModelStats(checkpoint: ck, map: map), rows: rows)
    }

    /// Layer kinds present, in pattern-letter order (M, *, -, E), with their counts.
    public var layerCounts: [(kind: LayerKind, count: Int)] {
        LayerKind.allCases.map { ($0, config.count($0)) }.filter { $0.1 > 0 }
    }

    /// The `--json` form. Non-finite values (an unbounded `time_step_limit`) are written as `null`.
    public var json: JSONValue {
        let c = config
        var o: JSONObject = [
            "format": .string(format), "path": .string(path), "files": .int(fileCount),
            "model_type": .string(c.modelType), "pattern": .string(c.pattern), "num_layers": .int(c.layers.count),
        ]
        var counts = JSONObject()
        for (k, n) in layerCounts { counts[k.name] = .int(n) }
        o["layer_counts"] = .object(counts)
        o["hidden_size"] = .int(c.hiddenSize)
        o["vocab_size"] = .int(c.vocabSize)
        o["norm_eps"] = .float(c.normEps)
        o["tie_word_embeddings"] = .bool(c.tieWordEmbeddings)
        if let m = c.mamba {
            var j: JSONObject = ["heads": .int(m.heads), "head_dim": .int(m.headDim), "groups": .int(m.groups)]
            j["state_size"] = .int(m.stateSize)
            j["conv_kernel"] = .int(m.convKernel)
            j["chunk_size"] = .int(m.chunkSize)
            j["inner_size"] = .int(m.innerSize)
            j["conv_dim"] = .int(m.convDim)
            j["in_proj_rows"] = .int(m.inProjRows)
            j["conv_bias"] = .bool(m.convBias)
            j["time_step_limit"] = [.float(m.timeStepLimit.0), .float(m.timeStepLimit.1)]
            o["mamba"] = .object(j)
        }
        if let a = c.attention {
            o["attention"] = ["heads": .int(a.heads), "kv_heads": .int(a.kvHeads), "head_dim": .int(a.headDim)]
        }
        if let m = c.mlp { o["mlp"] = ["intermediate_size": .int(m.intermediateSize)] }
        if let e = c.moe {
            var m: JSONObject = ["experts": .int(e.experts), "top_k": .int(e.topK), "intermediate_size": .int(e.intermediateSize)]
            m["shared_experts"] = .int(e.sharedExperts)
            m["shared_intermediate_size"] = .int(e.sharedIntermediateSize)
            m["n_group"] = .int(e.nGroup)
            m["topk_group"] = .int(e.topkGroup)
            m["norm_topk_prob"] = .bool(e.normTopkProb)
            m["routed_scaling_factor"] = .float(e.routedScalingFactor)
            m["latent_size"] = e.latentSize.map { .int($0) } ?? .null
            o["moe"] = .object(m)
        }
        o["parameters"] = .int(stats.parameters)
        o["active_parameters"] = .int(stats.activeParameters)
        o["buffer_elements"] = .int(stats.bufferElements)
        var bytes = JSONObject()
        for (d, n) in stats.dtypesBySize { bytes[d.rawValue] = .int(n) }
        o["bytes"] = .object(bytes)
        o["total_bytes"] = .int(stats.totalBytes)
        o["tensors"] = .array(rows.map { r in
            var t: JSONObject = ["name": .string(r.name), "dtype": .string(r.dtype),
                                 "shape": .array(r.shape.map { .int($0) }),
                                 "role": r.role.map { .string($0.rawValue) } ?? .null]
            if let l = r.layer { t["layer"] = .int(l) }
            if let n = r.note { t["note"] = .string(n) }
            return .object(t)
        })
        return .object(o)
    }
}
