/// One model tensor bound to its place in the architecture.
public struct BoundTensor: @unchecked Sendable {
    /// Hub name (`backbone.layers.3.mixer.experts.5.up_proj.weight`), whatever the source spelled.
    public let name: String
    public let role: TensorRole
    public let layer: Int?
    public let expert: Int?
    /// Its values: a mapped view, or codes and scales decoded on demand (`TensorSource`).
    public let data: TensorSource
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
    /// The checkpoint's quantized layout, when it is already quantized (`QuantizedLayout`).
    public let quantization: (any QuantizedLayout)?
    /// Tensors the quantized layout keeps for the runtime only (activation and KV-cache scales).
    public let runtimeOnly: [String]
    /// The value of each single-value runtime tensor (`….input_scale`, `….k_scale`), checked
    /// finite and positive, so a re-export can carry a quantized source's static scales over.
    public let runtimeScales: [String: Float]
    /// Scale tensors the quantized layout read to decode the weights beside them.
    public let scales: [String]
    private let byKey: [Key: Int]

    struct Key: Hashable { let role: TensorRole; let layer: Int; let expert: Int }

    public func tensor(_ role: TensorRole, layer: Int? = nil, expert: Int? = nil) -> BoundTensor? {
        byKey[Key(role: role, layer: layer ?? -1, expert: expert ?? -1)].map { tensors[$0] }
    }

    /// One layer's tensors as a template: an entry with `perExpert` stands for one tensor per
    /// routed expert. Its size does not depend on the expert count, so checking a file against a
    /// config that claims 2^24 experts costs nothing until a tensor is actually looked up.
    public static func layerTemplate(of config: ModelConfig, layer l: Int) -> [(role: TensorRole, perExpert: Bool, shape: [Int])] {
        let h = config.hiddenSize
        var out: [(TensorRole, Bool, [Int])] = [(.layerNorm, false, [h])]
        switch config.layers[l] {
        case .mamba:
            let m = config.mamba!
            out += [(.mambaInProj, false, [m.inProjRows, h]), (.mambaConvWeight, false, [m.convDim, 1, m.convKernel])]
            if m.convBias { out.append((.mambaConvBias, false, [m.convDim])) }
            out += [(.mambaALog, false, [m.heads]), (.mambaD, false, [m.heads]), (.mambaDtBias, false, [m.heads]),
                    (.mambaNorm, false, [m.innerSize]), (.mambaOutProj, false, [h, m.innerSize])]
        case .attention:
            let a = config.attention!
            out += [(.attnQ, false, [a.qRows, h]), (.attnK, false, [a.kvRows, h]), (.attnV, false, [a.kvRows, h]),
                    (.attnO, false, [h, a.qRows])]
        case .mlp:
            let f = config.mlp!.intermediateSize
            out += [(.mlpUp, false, [f, h]), (.mlpDown, false, [h, f])]
        case .moe:
            let e = config.moe!
            let x = e.latentSize ?? h
            out += [(.routerWeight, false, [e.experts, h]), (.routerBias, false, [e.experts])]
            if e.latentSize != nil { out += [(.latentIn, false, [x, h])] }
            out += [(.expertUp, true, [e.intermediateSize, x]), (.expertDown, true, [x, e.intermediateSize])]
            if e.latentSize != nil { out += [(.latentOut, false, [h, x])] }
            if e.sharedExperts > 0 {
                out += [(.sharedUp, false, [e.sharedIntermediateSize, h]), (.sharedDown, false, [h, e.sharedIntermediateSize])]
            }
        }
        return out
    }

    /// Expected tensors of one layer, with their shapes, in the order the forward pass reads them.
    public static func expectedTensors(of config: ModelConfig, layer l: Int) -> [(role: TensorRole, expert: Int?, shape: [Int])] {
        var out: [(TensorRole, Int?, [Int])] = []
        var experts: [(TensorRole, [Int])] = []
        for t in layerTemplate(of: config, layer: l) {
            if t.perExpert { experts.append((t.role, t.shape)); continue }
            // Experts go where the forward pass reads them: after the router (and latent_in).
            if !experts.isEmpty {
                for k in 0..<config.moe!.experts { for (r, sh) in experts { out.append((r, k, sh)) } }
                experts = []
            }
            out.append((t.role, nil, t.shape))
        }
        for k in 0..<(experts.isEmpty ? 0 : config.moe!.experts) { for (r, sh) in experts { out.append((r, k, sh)) } }
        return out
    }

    /// The shape `config` implies for one tensor, or nil when the model has no such tensor (a
    /// role its layer kind lacks, a layer or expert index out of range, an expert index on a
    /// tensor that has none). Costs the same whatever the expert count.
    public static func expectedShape(of config: ModelConfig, role: TensorRole, layer: Int?, expert: Int?) -> [Int]? {
        let h = config.hiddenSize
        switch role {
        case .embedding, .lmHead: return layer == nil && expert == nil ? [config.vocabSize, h] : nil
        case .finalNorm: return layer == nil && expert == nil ? [h] : nil
        default: break
        }
        guard let l = layer, l >= 0, l < config.layers.count else { return nil }
        guard let t = layerTemplate(of: config, layer: l).first(where: { $0.role == role }) else { return nil }
        if t.perExpert {
            guard let k = expert, k >= 0, k < config.moe!.experts else { return nil }
        } else if expert != nil { return nil }
        return t.shape
    }

    /// Number of tensors `config` implies, lm_head included, without listing them.
    public static func expectedCount(of config: ModelConfig) -> Int {
        var n = 3
        for l in 0..<config.layers.count {
            for t in layerTemplate(of: config, layer: l) { n += t.perExpert ? config.moe!.experts : 1 }
        }
        return n
    }

    /// With `allowUnexpected` false (convert, perplexity, verify), a checkpoint tensor the config
    /// does not ask for is an error: dropping it silently would make a different model (conv
    /// biases with `use_conv_bias: false`, shared experts with `n_shared_experts: 0`, layers past
    /// a short pattern). `inspect` allows them, to list them.
    public init(checkpoint: Checkpoint, allowUnexpected: Bool = false) throws(FormatError) {
        try self.init(config: checkpoint.config, source: checkpoint.directory, names: checkpoint.tensorNames,
                      allowUnexpected: allowUnexpected, quantization: checkpoint.quantization, view: { checkpoint.view($0) })
    }

    /// `prebound` are sources other readers already built under checkpoint names (a GGUF file's
    /// tensors, reshaped, sliced per expert and decoded on demand); they are looked up before `view`.
    public init(config: ModelConfig, source: String, names: [String], allowUnexpected: Bool = false,
                quantization: (any QuantizedLayout)? = nil, prebound: [String: TensorSource] = [:],
                view: (String) -> TensorView?) throws(FormatError) {
        self.config = config
        self.quantization = quantization
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
        var scaleNames: [String] = []
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

        // A quantized layout turns a stored weight (and the scales it finds beside it) into a source.
        func decoded(_ name: String, _ t: TensorView) throws(FormatError) -> TensorSource {
            guard let q = quantization else { return TensorSource(t) }
            let (s, consumed) = try q.bind(weight: name, view: t, lookup: view)
            for n in consumed where used.insert(n).inserted { scaleNames.append(n) }
            return s
        }

        @discardableResult
        func bind(_ role: TensorRole, layer: Int?, expert: Int?, shape: [Int], optional: Bool = false) throws(FormatError) -> Bool {
            let hub = role.hubName(layer: layer, expert: expert)
            let outName = (role == .lmHead ? "" : "backbone.") + hub
            var v: TensorSource?
            var from = ""
            var stacked: [Int]?
            let stored = canonical[hub] ?? quantization?.storedNames(for: hub).lazy.compactMap({ canonical[$0] }).first
            if let src = stored, let s = prebound[src] {
                used.insert(src); v = s; from = src
            } else if let src = stored, let t = view(src) {
                used.insert(src); v = try decoded(src, t); from = src
            } else if let k = expert, let l = layer {
                // Stacked experts: layers.L.mixer.experts.{up,down}_proj[.weight] of shape [E, out, in].
                let proj = role == .expertUp ? "up_proj" : "down_proj"
                for cand in ["layers.\(l).mixer.experts.\(proj)", "layers.\(l).mixer.experts.\(proj).weight"] {
                    if let src = canonical[cand], let t = view(src) {
                        used.insert(src)
                        guard t.shape.count == 3, t.shape[0] == c.moe!.experts else {
                            mismatch(src, "\(src): shape \(t.shape), expected \([c.moe!.experts] + shape)")
                            return false
                        }
                        if quantization != nil, try decoded(src, t).encoded != nil {
                            throw FormatError.unsupported(file: t.path, tensor: src, message: "stacked quantized expert tensors are not read; per-expert tensors are")
                        }
                        v = TensorSource(t.slice(k, name: outName))
                        from = src
                        stacked = t.shape
                        break
                    }
                }
            }
            if v == nil && role == .lmHead && c.tieWordEmbeddings, let src = canonical["embeddings.weight"], let t = view(src) {
                v = try decoded(src, t); from = src
            }
            guard let t = v else {
                if !optional { missing.append(outName) }
                return false
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
                return false
            }
            guard t.encoded != nil || t.dtype.isFloatingPoint else {
                mismatch(from, "\(from): dtype \(t.dtype.rawValue) is not a floating-point type")
                return false
            }
            byKey[Key(role: role, layer: layer ?? -1, expert: expert ?? -1)] = list.count
            list.append(BoundTensor(name: outName, role: role, layer: layer, expert: expert, data: t, source: from))
            return true
        }

        let h = c.hiddenSize
        try bind(.embedding, layer: nil, expert: nil, shape: [c.vocabSize, h])
        for l in 0..<c.layers.count {
            let tpl = Self.layerTemplate(of: c, layer: l)
            var i = 0
            while i < tpl.count {
                guard tpl[i].perExpert else { try bind(tpl[i].role, layer: l, expert: nil, shape: tpl[i].shape); i += 1; continue }
                var j = i
                while j < tpl.count && tpl[j].perExpert { j += 1 }
                // Bounded by what the checkpoint holds: a config claiming 2^24 experts stops at
                // the first expert the checkpoint lacks instead of naming every missing one.
                let n = c.moe!.experts
                for k in 0..<n {
                    let before = missing.count
                    var ok = true
                    for t in tpl[i..<j] { if try !bind(t.role, layer: l, expert: k, shape: t.shape) { ok = false } }
                    if ok { continue }
                    if k + 1 < n && missing.count > before {
                        missing[missing.count - 1] += " (experts \(k + 1)...\(n - 1) of layer \(l) not looked for: config.json says \(n))"
                    }
                    break
                }
                i = j
            }
        }
        try bind(.finalNorm, layer: nil, expert: nil, shape: [h])
        try bind(.lmHead, layer: nil, expert: nil, shape: [c.vocabSize, h])

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
        var unused = names.filter { !used.contains($0) && !$0.hasPrefix("mtp.") }
        var runtimeOnly: [String] = []
        var runtimeScales: [String: Float] = [:]
        if let q = quantization {
            runtimeOnly = unused.filter(q.isRuntimeOnly)
            for n in runtimeOnly {
                if let t = view(n) {
                    try q.checkRuntimeOnly(n, view: t)
                    if t.elementCount == 1, t.dtype.isFloatingPoint { runtimeScales[n] = try t.floats()[0] }
                }
            }
            unused.removeAll(where: q.isRuntimeOnly)
        }
        if !allowUnexpected, quantization == nil, let scale = unused.first(where: QuantizedLayouts.looksLikeQuantizationTensor) {
            throw FormatError.modelMismatch(file: source, message: "'\(scale)' looks like a quantization tensor (a scale or packed codes), "
                + "but config.json has no quantization_config saying how to read the weights with it; reading them without would give another model")
        }
        if !allowUnexpected && !unused.isEmpty {
            throw FormatError.modelMismatch(file: source, message: "\(unused.count) tensor(s) the config does not use, which would be dropped: "
                + unused.prefix(20).joined(separator: ", ") + (unused.count > 20 ? ", …" : "")
                + " (does config.json describe this checkpoint? `inspect` lists them)")
        }
        tensors = list
        self.byKey = byKey
        unexpected = unused
        self.skipped = skipped
        self.runtimeOnly = runtimeOnly
        self.runtimeScales = runtimeScales
        scales = scaleNames
    }
}
