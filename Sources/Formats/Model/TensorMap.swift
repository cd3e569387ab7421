/// One model tensor bound to its place in the architecture.
public struct BoundTensor: @unchecked Sendable {
    /// Hub name (`backbone.layers.3.mixer.experts.5.up_proj.weight`), whatever the source spelled.
    public let name: String
    public let role: TensorRole
    public let layer: Int?
    public let expert: Int?
    public let view: TensorView
    /// The checkpoint tensor it was bound from: differs from `name` for `model.`-prefixed or
    /// stacked experts (the whole `[E, out, in]` tensor) and a tied lm_head (the embedding).
    public let source: String
}

/// Binds checkpoint tensors to the model description.
///
/// Accepts the spellings real checkpoints use: `backbone.` or `model.` prefixes (or none),
/// `embeddings` or `embedding`, experts as per-index 2-D tensors or stacked 3-D `[E, out, in]`
/// (sliced, not copied), `mtp.*` draft-head tensors skipped, and a tied lm_head reusing the
/// embedding. Missing and mis-shaped tensors are errors listing every offender; unexpected ones
/// are reported for the caller to show.
public struct TensorMap: @unchecked Sendable {
    public let config: ModelConfig
    /// In model order: embedding, then each layer's tensors, final norm, lm_head.
    public let tensors: [BoundTensor]
    /// Source tensors nothing was bound to.
    public let unexpected: [String]
    /// Source tensors deliberately skipped (`mtp.*`).
    public let skipped: [String]
    private let byKey: [Key: Int]

    struct Key: Hashable { let role: TensorRole; let layer: Int; let expert: Int }

    public func tensor(_ role: TensorRole, layer: Int? = nil, expert: Int? = nil) -> BoundTensor? {
        byKey[Key(role: role, layer: layer ?? -1, expert: expert ?? -1)].map { tensors[$0] }
    }

    /// Expected tensors of one layer, with their shapes, in the order the forward pass reads them.
    public static func expectedTensors(of config: ModelConfig, layer l: Int) -> [(role: TensorRole, expert: Int?, shape: [Int])] {
        let h = config.hiddenSize
        var out: [(TensorRole, Int?, [Int])] = [(.layerNorm, nil, [h])]
        switch config.layers[l] {
        case .mamba:
            let m = config.mamba!
            out += [(.mambaInProj, nil, [m.inProjRows, h]), (.mambaConvWeight, nil, [m.convDim, 1, m.convKernel])]
            if m.convBias { out.append((.mambaConvBias, nil, [m.convDim])) }
            out += [(.mambaALog, nil, [m.heads]), (.mambaD, nil, [m.heads]), (.mambaDtBias, nil, [m.heads]),
                    (.mambaNorm, nil, [m.innerSize]), (.mambaOutProj, nil, [h, m.innerSize])]
        case .attention:
            let a = config.attention!
            out += [(.attnQ, nil, [a.qRows, h]), (.attnK, nil, [a.kvRows, h]), (.attnV, nil, [a.kvRows, h]),
                    (.attnO, nil, [h, a.qRows])]
        case .mlp:
            let f = config.mlp!.intermediateSize
            out += [(.mlpUp, nil, [f, h]), (.mlpDown, nil, [h, f])]
        case .moe:
            let e = config.moe!
            let x = e.latentSize ?? h
            out += [(.routerWeight, nil, [e.experts, h]), (.routerBias, nil, [e.experts])]
            if e.latentSize != nil { out += [(.latentIn, nil, [x, h])] }
            for k in 0..<e.experts {
                out += [(.expertUp, k, [e.intermediateSize, x]), (.expertDown, k, [x, e.intermediateSize])]
            }
            if e.latentSize != nil { out += [(.latentOut, nil, [h, x])] }
            if e.sharedExperts > 0 {
                out += [(.sharedUp, nil, [e.sharedIntermediateSize, h]), (.sharedDown, nil, [h, e.sharedIntermediateSize])]
            }
        }
        return out
    }

    public init(checkpoint: Checkpoint) throws(FormatError) {
        try self.init(config: checkpoint.config, source: checkpoint.directory, names: checkpoint.tensorNames,
                      view: { checkpoint.view($0) })
    }

    public init(config: ModelConfig, source: String, names: [String], view: (String) -> TensorView?) throws(FormatError) {
        self.config = config
        let c = config
        if c.attention?.bias == true || c.mlp?.bias == true || c.mamba?.projBias == true {
            throw FormatError.unsupported(file: source, tensor: nil, message: "projection biases (attention_bias / mlp_bias / use_bias = true) are not supported")
        }
        // Strip prefixes once; remember which source name each stripped name came from.
        // Sized up front: rehashing thousands of long names while growing cost more than binding.
        var canonical = [String: String](minimumCapacity: names.count)
        var skipped: [String] = []
        for n in names {
            var s = Substring(n)
            if s.hasPrefix("mtp.") { skipped.append(n); continue }
            if s.hasPrefix("backbone.") { s = s.dropFirst(9) } else if s.hasPrefix("model.") { s = s.dropFirst(6) }
            if s == "embedding.weight" { s = "embeddings.weight" }
            canonical[String(s)] = n
        }
        var used = Set<String>(minimumCapacity: names.count)
        var list: [BoundTensor] = []
        list.reserveCapacity(names.count)
        var byKey = [Key: Int](minimumCapacity: names.count)
        var missing: [String] = []
        var mismatched: [String] = []
        // One report per source tensor: a mis-shaped stacked expert tensor would otherwise be
        // reported once per expert, and a mis-shaped tied embedding twice.
        var reported = Set<String>()
        func mismatch(_ src: String, _ message: String) {
            if reported.insert(src).inserted { mismatched.append(message) }
        }

        func bind(_ role: TensorRole, layer: Int?, expert: Int?, shape: [Int], optional: Bool = false) {
            let hub = role.hubName(layer: layer, expert: expert)
            let outName = (role == .lmHead ? "" : "backbone.") + hub
            var v: TensorView?
            var from = ""
            var stacked: [Int]?
            if let src = canonical[hub], let t = view(src) {
                used.insert(src); v = t; from = src
            } else if let k = expert, let l = layer {
                // Stacked experts: layers.L.mixer.experts.{up,down}_proj[.weight] of shape [E, out, in].
                let proj = role == .expertUp ? "up_proj" : "down_proj"
                for cand in ["layers.\(l).mixer.experts.\(proj)", "layers.\(l).mixer.experts.\(proj).weight"] {
                    if let src = canonical[cand], let t = view(src) {
                        used.insert(src)
                        guard t.shape.count == 3, t.shape[0] == c.moe!.experts else {
                            mismatch(src, "\(src): shape \(t.shape), expected \([c.moe!.experts] + shape)")
                            return
                        }
                        v = t.slice(k, name: outName)
                        from = src
                        stacked = t.shape
                        break
                    }
                }
            }
            if v == nil && role == .lmHead && c.tieWordEmbeddings, let src = canonical["embeddings.weight"], let t = view(src) {
                v = t; from = src
            }
            guard let t = v else {
                if !optional { missing.append(outName) }
                return
            }
            let got = t.shape
            // conv1d weights are sometimes stored squeezed as [C, K].
            let ok = got == shape || (role == .mambaConvWeight && got == [shape[0], shape[2]])
            guard ok else {
                if let full = stacked {
                    mismatch(from, "\(from): shape \(full), expected \([c.moe!.experts] + shape)")
                } else {
                    mismatch(from, "\(from): shape \(got), expected \(shape)")
                }
                return
            }
            guard t.dtype.isFloatingPoint else {
                mismatch(from, "\(from): dtype \(t.dtype.rawValue) is not a floating-point type")
                return
            }
            byKey[Key(role: role, layer: layer ?? -1, expert: expert ?? -1)] = list.count
            list.append(BoundTensor(name: outName, role: role, layer: layer, expert: expert, view: t, source: from))
        }

        let h = c.hiddenSize
        bind(.embedding, layer: nil, expert: nil, shape: [c.vocabSize, h])
        for l in 0..<c.layers.count {
            for e in Self.expectedTensors(of: c, layer: l) { bind(e.role, layer: l, expert: e.expert, shape: e.shape) }
        }
        bind(.finalNorm, layer: nil, expert: nil, shape: [h])
        bind(.lmHead, layer: nil, expert: nil, shape: [c.vocabSize, h])

        if !missing.isEmpty || !mismatched.isEmpty {
            var parts: [String] = []
            if !missing.isEmpty {
                parts.append("\(missing.count) missing tensor(s): " + missing.prefix(20).joined(separator: ", ")
                             + (missing.count > 20 ? ", …" : ""))
            }
            if !mismatched.isEmpty {
                parts.append("\(mismatched.count) mis-shaped tensor(s): " + mismatched.prefix(20).joined(separator: "; ")
                             + (mismatched.count > 20 ? "; …" : ""))
            }
            throw FormatError.modelMismatch(file: source, message: parts.joined(separator: "; "))
        }
        tensors = list
        self.byKey = byKey
        unexpected = names.filter { !used.contains($0) && !$0.hasPrefix("mtp.") }
        self.skipped = skipped
    }
}
