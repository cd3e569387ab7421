import Formats

/// Everything a `Tokenizer` is built from, read out of tokenizer.json.
struct TokenizerDefinition {
    var model: BPEModel
    var addedTokens: [AddedToken]
    var preTokenizer: PreTokenizer
    var decoder: DecoderKind
    var postProcessors: [[TemplateItem]]
    /// Token spelling by id (added tokens override the model's), for decoding and `token(for:)`.
    var tokens: [String?]
    var tokenIds: [String: Int32]
}

enum DecoderKind: Sendable {
    case byteLevel
    /// No decoder: Hugging Face joins the tokens with spaces.
    case joinWithSpaces
}

/// One element of a post-processor template for a single sequence.
enum TemplateItem: Sendable, Equatable {
    case sequence
    case tokens([Int32])
}

/// Reads tokenizer.json, refusing by name every feature this implementation does not reproduce.
struct TokenizerJSONReader {
    let file: String

    func fail(_ message: String) -> TokenizerError { TokenizerError(file: file, message: message) }

    func read(_ bytes: [UInt8]) throws(TokenizerError) -> TokenizerDefinition {
        let root: JSONObject
        do {
            guard let o = try JSONParser.parse(bytes).objectValue else { throw fail("top level is not a JSON object") }
            root = o
        } catch let e as JSONParseError {
            throw fail("invalid JSON: \(e)")
        } catch let e as TokenizerError {
            throw e
        } catch {
            throw fail("\(error)")
        }

        for key in ["truncation", "padding"] {
            if let v = root[key], !v.isNull {
                throw fail("\(key) is set; encoding with \(key) is not supported (set it to null)")
            }
        }
        try checkNormalizer(root["normalizer"])
        let preTokenizer = try readPreTokenizer(root["pre_tokenizer"])
        let decoder = try readDecoder(root["decoder"])

        guard let modelJSON = root["model"]?.objectValue else { throw fail("missing \"model\" object") }
        let (model, vocab) = try readModel(modelJSON, byteLevel: preTokenizer.byteLevel != nil)
        let added = try readAddedTokens(root["added_tokens"], vocab: vocab)

        var maxId: Int32 = -1
        for (_, id) in vocab { maxId = max(maxId, id) }
        for t in added { maxId = max(maxId, t.id) }
        var tokens = [String?](repeating: nil, count: Int(maxId) + 1)
        var tokenIds = vocab
        for (s, id) in vocab { tokens[Int(id)] = s }
        for t in added {
            tokens[Int(t.id)] = t.content
            tokenIds[t.content] = t.id
        }
        let post = try readPostProcessor(root["post_processor"], tokenIds: tokenIds)
        return TokenizerDefinition(model: model, addedTokens: added, preTokenizer: preTokenizer, decoder: decoder,
                                   postProcessors: post, tokens: tokens, tokenIds: tokenIds)
    }

    private func typeName(_ v: JSONValue, _ what: String) throws(TokenizerError) -> String {
        guard let t = v["type"]?.stringValue else { throw fail("\(what) has no \"type\"") }
        return t
    }

    private func bool(_ o: JSONValue, _ key: String, _ what: String, default d: Bool) throws(TokenizerError) -> Bool {
        guard let v = o[key], !v.isNull else { return d }
        guard let b = v.boolValue else { throw fail("\(what).\(key) is not a boolean") }
        return b
    }

    // MARK: normalizer

    private func checkNormalizer(_ v: JSONValue?) throws(TokenizerError) {
        guard let v, !v.isNull else { return }
        let type = try typeName(v, "normalizer")
        if type == "Sequence", let list = v["normalizers"]?.arrayValue {
            for n in list { try checkNormalizer(n) }
            return
        }
        throw fail("unsupported normalizer \"\(type)\"")
    }

    // MARK: pre-tokenizer

    private func readPreTokenizer(_ v: JSONValue?) throws(TokenizerError) -> PreTokenizer {
        var flat: [JSONValue] = []
        func flatten(_ v: JSONValue) throws(TokenizerError) {
            let type = try typeName(v, "pre_tokenizer")
            if type == "Sequence" {
                guard let list = v["pretokenizers"]?.arrayValue else {
                    throw fail("pre_tokenizer Sequence has no \"pretokenizers\" list")
                }
                for p in list { try flatten(p) }
            } else {
                flat.append(v)
            }
        }
        if let v, !v.isNull { try flatten(v) }

        var splits: [SplitStep] = []
        var byteLevel: ByteLevelStep? = nil
        for p in flat {
            let type = try typeName(p, "pre_tokenizer")
            if byteLevel != nil {
                throw fail("pre_tokenizer \"\(type)\" after \"ByteLevel\" is not supported (ByteLevel must be the last pre-tokenizer)")
            }
            switch type {
            case "Split":
                splits.append(try readSplit(p))
            case "ByteLevel":
                byteLevel = ByteLevelStep(
                    addPrefixSpace: try bool(p, "add_prefix_space", "pre_tokenizer ByteLevel", default: true),
                    useRegex: try bool(p, "use_regex", "pre_tokenizer ByteLevel", default: true))
            default:
                throw fail("unsupported pre_tokenizer \"\(type)\"")
            }
        }
        return PreTokenizer(splits: splits, byteLevel: byteLevel)
    }

    private func readSplit(_ p: JSONValue) throws(TokenizerError) -> SplitStep {
        guard let behaviorName = p["behavior"]?.stringValue else {
            throw fail("pre_tokenizer Split has no \"behavior\"")
        }
        guard let behavior = SplitBehavior(rawValue: behaviorName) else {
            throw fail("unsupported pre_tokenizer Split behavior \"\(behaviorName)\"")
        }
        let invert = try bool(p, "invert", "pre_tokenizer Split", default: false)
        guard let pattern = p["pattern"]?.objectValue, pattern.count == 1 else {
            throw fail("pre_tokenizer Split pattern must be {\"Regex\": ...} or {\"String\": ...}")
        }
        if let regex = pattern["Regex"]?.stringValue {
            return SplitStep(pattern: try compile(regex), behavior: behavior, invert: invert)
        }
        if let literal = pattern["String"]?.stringValue {
            guard !literal.isEmpty else { throw fail("pre_tokenizer Split has an empty String pattern") }
            return SplitStep(pattern: LiteralPattern(literal), behavior: behavior, invert: invert)
        }
        throw fail("unsupported pre_tokenizer Split pattern kind \"\(pattern.keys.first ?? "")\"")
    }

    private func compile(_ regex: String) throws(TokenizerError) -> any SplitPattern {
        if regex == TekkenPattern.source { return TekkenPattern() }
        if regex == GPT2Pattern.source { return GPT2Pattern() }
        do {
            return try RegexPattern(regex)
        } catch {
            throw fail("pre_tokenizer Split regex \"\(regex)\": \(error.message)")
        }
    }

    // MARK: decoder

    private func readDecoder(_ v: JSONValue?) throws(TokenizerError) -> DecoderKind {
        guard let v, !v.isNull else { return .joinWithSpaces }
        let type = try typeName(v, "decoder")
        guard type == "ByteLevel" else { throw fail("unsupported decoder \"\(type)\"") }
        return .byteLevel
    }

    // MARK: model

    private func readModel(_ m: JSONObject, byteLevel: Bool) throws(TokenizerError) -> (BPEModel, [String: Int32]) {
        let mv = JSONValue.object(m)
        if let type = m["type"]?.stringValue {
            guard type == "BPE" else { throw fail("unsupported model \"\(type)\" (only BPE is implemented)") }
        } else if m["merges"] == nil {
            throw fail("model has no \"type\"")
        }
        if let d = m["dropout"], !d.isNull {
            guard let p = d.doubleValue else { throw fail("model.dropout is not a number") }
            if p != 0 { throw fail("model.dropout \(p) is not supported (BPE dropout makes encoding random)") }
        }
        guard let vocabJSON = m["vocab"]?.objectValue else { throw fail("model.vocab is missing or not an object") }
        var vocab: [String: Int32] = [:]
        vocab.reserveCapacity(vocabJSON.count)
        for (token, idValue) in vocabJSON {
            guard let id = idValue.intValue, id >= 0, id < Int(Int32.max) else {
                throw fail("model.vocab[\"\(token)\"] is not a valid token id")
            }
            vocab[token] = Int32(id)
        }

        func optionalString(_ key: String) throws(TokenizerError) -> String? {
            guard let v = m[key], !v.isNull else { return nil }
            guard let s = v.stringValue else { throw fail("model.\(key) is not a string") }
            return s
        }
        let prefix = try optionalString("continuing_subword_prefix")
        let suffix = try optionalString("end_of_word_suffix")
        var unknownId: Int32? = nil
        if let unk = try optionalString("unk_token") {
            guard let id = vocab[unk] else { throw fail("model.unk_token \"\(unk)\" is not in model.vocab") }
            unknownId = id
        }

        guard let mergesJSON = m["merges"]?.arrayValue else { throw fail("model.merges is missing or not a list") }
        var merges = PairRanks(capacity: mergesJSON.count)
        let prefixBytes = prefix?.utf8.count ?? 0
        for (rank, item) in mergesJSON.enumerated() {
            let a: String, b: String
            if let s = item.stringValue {
                guard let space = s.firstIndex(of: " ") else {
                    throw fail("model.merges[\(rank)] \"\(s)\" is not two tokens separated by a space")
                }
                a = String(s[..<space])
                b = String(s[s.index(after: space)...])
            } else if let pair = item.arrayValue, pair.count == 2, let x = pair[0].stringValue, let y = pair[1].stringValue {
                a = x
                b = y
            } else {
                throw fail("model.merges[\(rank)] is neither \"a b\" nor [a, b]")
            }
            guard let ia = vocab[a] else { throw fail("model.merges[\(rank)]: token \"\(a)\" is not in model.vocab") }
            guard let ib = vocab[b] else { throw fail("model.merges[\(rank)]: token \"\(b)\" is not in model.vocab") }
            // Hugging Face drops the continuing-subword prefix's length from the right token.
            let merged = a + String(decoding: b.utf8.dropFirst(prefixBytes), as: UTF8.self)
            guard let id = vocab[merged] else {
                throw fail("model.merges[\(rank)]: merged token \"\(merged)\" is not in model.vocab")
            }
            merges.set(ia, ib, rank: Int32(rank), id: id)
        }

        let model = BPEModel(
            vocab: vocab, merges: merges, unknownId: unknownId,
            fuseUnknown: try bool(mv, "fuse_unk", "model", default: false),
            byteFallback: try bool(mv, "byte_fallback", "model", default: false),
            continuingSubwordPrefix: prefix, endOfWordSuffix: suffix,
            ignoreMerges: try bool(mv, "ignore_merges", "model", default: false),
            byteLevel: byteLevel)
        return (model, vocab)
    }

    // MARK: added tokens

    private func readAddedTokens(_ v: JSONValue?, vocab: [String: Int32]) throws(TokenizerError) -> [AddedToken] {
        guard let v, !v.isNull else { return [] }
        guard let list = v.arrayValue else { throw fail("added_tokens is not a list") }
        var out: [AddedToken] = []
        var byContent: [String: Int32] = [:]
        for (i, item) in list.enumerated() {
            let what = "added_tokens[\(i)]"
            guard let content = item["content"]?.stringValue else { throw fail("\(what) has no \"content\"") }
            guard let jsonId = item["id"]?.intValue, jsonId >= 0, jsonId < Int(Int32.max) else {
                throw fail("\(what) has no valid \"id\"")
            }
            if content.isEmpty { continue }
            // Hugging Face re-derives the id: the one the content already has, else the next free
            // one after the model vocabulary. The file's id normally agrees.
            let id: Int32
            if let existing = byContent[content] ?? vocab[content] {
                id = existing
            } else if let maxAdded = byContent.values.max(), Int(maxAdded) >= vocab.count {
                id = maxAdded + 1
            } else {
                id = Int32(vocab.count)
            }
            if id != Int32(jsonId) {
                throw fail("\(what) \"\(content)\" has id \(jsonId) but Hugging Face tokenizers would give it id \(id)")
            }
            byContent[content] = id
            out.append(AddedToken(
                id: id, content: content,
                special: try bool(item, "special", what, default: false),
                singleWord: try bool(item, "single_word", what, default: false),
                lstrip: try bool(item, "lstrip", what, default: false),
                rstrip: try bool(item, "rstrip", what, default: false),
                normalized: try bool(item, "normalized", what, default: true)))
        }
        return out
    }

    // MARK: post-processor

    private func readPostProcessor(_ v: JSONValue?, tokenIds: [String: Int32]) throws(TokenizerError) -> [[TemplateItem]] {
        guard let v, !v.isNull else { return [] }
        let type = try typeName(v, "post_processor")
        switch type {
        case "ByteLevel":
            return []  // only trims offsets
        case "Sequence":
            guard let list = v["processors"]?.arrayValue else { throw fail("post_processor Sequence has no \"processors\" list") }
            var out: [[TemplateItem]] = []
            for p in list { out += try readPostProcessor(p, tokenIds: tokenIds) }
            return out
        case "TemplateProcessing":
            return [try readTemplate(v)]
        case "RobertaProcessing", "BertProcessing":
            func special(_ key: String) throws(TokenizerError) -> Int32 {
                guard let pair = v[key]?.arrayValue, pair.count == 2, let id = pair[1].intValue else {
                    throw fail("post_processor \(type).\(key) is not [token, id]")
                }
                guard id >= 0, id < Int(Int32.max) else { throw fail("post_processor \(type).\(key) has id \(id), not a token id") }
                return Int32(id)
            }
            return [[.tokens([try special("cls")]), .sequence, .tokens([try special("sep")])]]
        default:
            throw fail("unsupported post_processor \"\(type)\"")
        }
    }

    private func readTemplate(_ v: JSONValue) throws(TokenizerError) -> [TemplateItem] {
        var specials: [String: [Int32]] = [:]
        if let o = v["special_tokens"]?.objectValue {
            for (name, entry) in o {
                guard let ids = entry["ids"]?.arrayValue else {
                    throw fail("post_processor TemplateProcessing special_tokens[\"\(name)\"] has no \"ids\"")
                }
                var list: [Int32] = []
                for id in ids {
                    guard let i = id.intValue, i >= 0, i < Int(Int32.max) else {
                        throw fail("post_processor TemplateProcessing special_tokens[\"\(name)\"] has a bad id \(id)")
                    }
                    list.append(Int32(i))
                }
                specials[name] = list
            }
        }
        func specialIds(_ name: String) throws(TokenizerError) -> [Int32] {
            guard let ids = specials[name] else {
                throw fail("post_processor TemplateProcessing uses \"\(name)\" which is not in its special_tokens")
            }
            return ids
        }
        var items: [TemplateItem] = []
        if let list = v["single"]?.arrayValue {
            for piece in list {
                if let seq = piece["Sequence"] {
                    guard seq["id"]?.stringValue == "A" else {
                        throw fail("post_processor TemplateProcessing single template refers to sequence \"\(seq["id"]?.stringValue ?? "?")\"")
                    }
                    items.append(.sequence)
                } else if let name = piece["SpecialToken"]?["id"]?.stringValue {
                    items.append(.tokens(try specialIds(name)))
                } else {
                    throw fail("post_processor TemplateProcessing single template has an unknown piece")
                }
            }
        } else if let text = v["single"]?.stringValue {
            for word in text.split(separator: " ") {
                let name = word.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
                if name == "$A" || name == "$" || name == "$0" {
                    items.append(.sequence)
                } else if name.hasPrefix("$") {
                    throw fail("post_processor TemplateProcessing single template refers to sequence \"\(name)\"")
                } else {
                    items.append(.tokens(try specialIds(name)))
                }
            }
        } else {
            throw fail("post_processor TemplateProcessing has no \"single\" template")
        }
        return items
    }
}
