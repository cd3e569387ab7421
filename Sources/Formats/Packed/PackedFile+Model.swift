extension PackedFile {
    /// Blobs are small stored files (tokenizer.json is tens of MB for the largest vocabularies);
    /// a larger `raw_length` is a crafted or corrupt header, not a file to allocate for.
    public static let maxBlobBytes = 1 << 30

    /// The tensor table must be exactly the model the embedded config.json describes, as
    /// `TensorMap` requires of a checkpoint: each entry's role, layer and expert name a tensor of
    /// that model under its hub name, with the shape the config implies, and none is missing
    /// (lm_head may be left out when embeddings are tied). Readers size buffers and loop bounds
    /// from the config and index sections by the table, so a disagreement is an error before
    /// anything is read. Costs O(entries), whatever expert count the config claims.
    static func checkTensorTable(_ tensors: [PackedTensor], config c: ModelConfig, file: String) throws(FormatError) {
        for t in tensors {
            func bad(_ m: String) -> FormatError { .invalidTensor(file: file, tensor: t.name, message: m) }
            var place = t.layer.map { " at layer \($0)" } ?? ""
            if let e = t.expert { place += ", expert \(e)" }
            guard let shape = TensorMap.expectedShape(of: c, role: t.role, layer: t.layer, expert: t.expert) else {
                throw bad("role \(t.role.rawValue)\(place) is not a tensor of the model the embedded config.json describes (\(c.pattern))")
            }
            let name = (t.role == .lmHead ? "" : "backbone.") + t.role.hubName(layer: t.layer, expert: t.expert)
            guard t.name == name else { throw bad("role \(t.role.rawValue)\(place) is the tensor named \(name), not this one") }
            // conv1d kernels may come from a checkpoint that stored them squeezed as [C, K].
            guard t.shape == shape || (t.role == .mambaConvWeight && t.shape == [shape[0], shape[2]]) else {
                throw bad("shape \(t.shape), but the embedded config.json implies \(shape)")
            }
        }
        // Entries are distinct (names are unique and a name is a function of role, layer and
        // expert) and each is expected, so a short table is a missing tensor: name the first.
        let expected = TensorMap.expectedCount(of: c)
        let present = Set(tensors.map(\.name))
        let tiedHead = c.tieWordEmbeddings && !present.contains("lm_head.weight")
        guard tensors.count < expected - (tiedHead ? 1 : 0) else { return }
        var first: String?
        TensorMap.forEachExpected(of: c) { role, layer, expert in
            if role == .lmHead && tiedHead { return true }
            let n = (role == .lmHead ? "" : "backbone.") + role.hubName(layer: layer, expert: expert)
            if present.contains(n) { return true }
            first = n
            return false
        }
        throw FormatError.missingTensor(file: file, tensor: (first ?? "?") + " (the tensor table has \(tensors.count) of the \(expected) tensors the embedded config.json implies)")
    }
}

extension TensorMap {
    /// Walks the tensors `config` implies in model order (embedding, layers, final norm, lm_head)
    /// until `body` returns false; nothing is built per expert, so stopping early is cheap.
    public static func forEachExpected(of c: ModelConfig, _ body: (TensorRole, Int?, Int?) -> Bool) {
        guard body(.embedding, nil, nil) else { return }
        for l in 0..<c.layers.count {
            let tpl = layerTemplate(of: c, layer: l)
            var i = 0
            while i < tpl.count {
                guard tpl[i].perExpert else {
                    guard body(tpl[i].role, l, nil) else { return }
                    i += 1; continue
                }
                var j = i
                while j < tpl.count && tpl[j].perExpert { j += 1 }
                for k in 0..<c.moe!.experts { for t in tpl[i..<j] { guard body(t.role, l, k) else { return } } }
                i = j
            }
        }
        guard body(.finalNorm, nil, nil) else { return }
        _ = body(.lmHead, nil, nil)
    }
}
