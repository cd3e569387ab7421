/// A Hugging Face byte-level BPE tokenizer (tokenizer.json + tokenizer_config.json) as GGUF's
/// `tokenizer.ggml.*` metadata, and back.
///
/// Writing does what llama.cpp's converter does for these models (`gpt2` model, token list by id
/// with `[PADn]` filling holes, token types, merges as "a b", special token ids, add_bos/add_eos,
/// chat template) with one difference on purpose: the pre-tokenizer is named from its split regex
/// (`knownPreTokenizers`), not from a hash of a test string's tokens — llama.cpp's hash list does
/// not know the fixtures' tokenizer although its regex is exactly the one llama.cpp calls `tekken`.
///
/// Reading rebuilds a tokenizer.json the `Tokenizer` target reads (vocabulary, merges, added
/// tokens, the named pre-tokenizer's regex), so a GGUF file carries its own tokenizer.
public enum GGUFVocabulary {
    /// llama.cpp token types (llama_token_type).
    public enum TokenType: Int32 { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    /// Pre-tokenizer names llama.cpp knows, with the tokenizer.json split regex each stands for.
    public static let knownPreTokenizers: [(name: String, regex: String)] = [
        ("tekken", #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#),
        ("llama-bpe", #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#),
    ]

    /// The `tokenizer.ggml.*` keys for a tokenizer.json (and its tokenizer_config.json, when
    /// there is one), padded to `vocabSize` tokens. `config` supplies bos/eos ids the
    /// tokenizer_config does not name.
    public static func metadata(tokenizerJSON: [UInt8], tokenizerConfig: [UInt8]?, vocabSize: Int, config: ModelConfig,
                                file: String) throws(FormatError) -> [(key: String, value: GGUFValue)] {
        func fail(_ m: String) -> FormatError { .io(file: file, message: m) }
        let root: JSONValue
        do { root = try JSONParser.parse(tokenizerJSON) } catch { throw fail("not valid JSON: \(error)") }
        guard let model = root["model"]?.objectValue, model["type"]?.stringValue == "BPE",
              let vocab = model["vocab"]?.objectValue else {
            throw FormatError.unsupported(file: file, tensor: nil, message: "only byte-level BPE tokenizers (model.type BPE) can be written to GGUF")
        }
        var tokens = [String?](repeating: nil, count: vocabSize)
        var types = [TokenType](repeating: .normal, count: vocabSize)
        for (tok, idv) in vocab {
            guard let id = idv.intValue, id >= 0 else { throw fail("vocab entry '\(tok)' has id \(idv)") }
            guard id < vocabSize else { throw fail("vocab entry '\(tok)' has id \(id), beyond the model's \(vocabSize) embeddings") }
            tokens[id] = tok
        }
        var byContent: [String: Int] = [:]
        for t in root["added_tokens"]?.arrayValue ?? [] {
            guard let id = t["id"]?.intValue, let content = t["content"]?.stringValue, id >= 0, id < vocabSize else {
                throw fail("added token \(t) has no id within the vocabulary or no content")
            }
            tokens[id] = content
            byContent[content] = id
            let special = t["special"]?.boolValue ?? false
            types[id] = special || looksSpecial(content) ? .control : .userDefined
        }
        for (tok, idv) in vocab { if let id = idv.intValue, byContent[tok] == nil { byContent[tok] = id } }
        var list: [GGUFValue] = []
        list.reserveCapacity(vocabSize)
        for i in 0..<vocabSize {
            if let t = tokens[i] { list.append(.string(t)) } else { list.append(.string("[PAD\(i)]")); types[i] = .unused }
        }
        var merges: [GGUFValue] = []
        for m in model["merges"]?.arrayValue ?? [] {
            if let s = m.stringValue { merges.append(.string(s)) } else if let p = m.arrayValue, p.count == 2, let a = p[0].stringValue, let b = p[1].stringValue {
                merges.append(.string(a + " " + b))
            } else { throw fail("merge \(m) is neither \"a b\" nor [a, b]") }
        }
        guard let pre = preTokenizerName(root) else {
            throw FormatError.unsupported(file: file, tensor: nil, message:
                "the pre-tokenizer's split regex is not one llama.cpp names (known: \(knownPreTokenizers.map(\.name).joined(separator: ", ")))")
        }
        var m: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(.string, list)),
            ("tokenizer.ggml.token_type", .array(.i32, types.map { .i32($0.rawValue) })),
            ("tokenizer.ggml.merges", .array(.string, merges)),
        ]
        var tc = JSONObject()
        if let b = tokenizerConfig {
            do { tc = try JSONParser.parse(b).objectValue ?? [:] } catch { throw fail("tokenizer_config.json: not valid JSON: \(error)") }
        }
        func tokenId(_ key: String) -> Int? {
            guard let v = tc[key] else { return nil }
            let s = v.stringValue ?? v["content"]?.stringValue
            return s.flatMap { byContent[$0] }
        }
        let ids: [(String, Int?)] = [
            ("bos", tokenId("bos_token") ?? config.bosTokenId), ("eos", tokenId("eos_token") ?? config.eosTokenId),
            ("unknown", tokenId("unk_token")), ("padding", tokenId("pad_token")),
        ]
        for (name, id) in ids { if let id { m.append(("tokenizer.ggml.\(name)_token_id", .u32(UInt32(id)))) } }
        if let b = tc["add_bos_token"]?.boolValue { m.append(("tokenizer.ggml.add_bos_token", .bool(b))) }
        if let b = tc["add_eos_token"]?.boolValue { m.append(("tokenizer.ggml.add_eos_token", .bool(b))) }
        if let t = tc["chat_template"]?.stringValue { m.append(("tokenizer.chat_template", .string(t))) }
        return m
    }

    /// llama.cpp's `does_token_look_special` for added tokens not flagged special.
    static func looksSpecial(_ t: String) -> Bool {
        (t.hasPrefix("<|") && t.hasSuffix("|>") && t.count > 4) || (t.hasPrefix("<｜") && t.hasSuffix("｜>"))
            || ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(t)
    }

    /// The llama.cpp name of a tokenizer.json's pre-tokenizer, from its Split regex.
    public static func preTokenizerName(_ root: JSONValue) -> String? {
        guard let pre = root["pre_tokenizer"] else { return nil }
        let steps = pre["pretokenizers"]?.arrayValue ?? [pre]
        for s in steps where s["type"]?.stringValue == "Split" {
            if let r = s["pattern"]?["Regex"]?.stringValue, let k = knownPreTokenizers.first(where: { $0.regex == r }) { return k.name }
        }
        return nil
    }

    /// A tokenizer.json rebuilt from a GGUF file's `tokenizer.ggml.*` keys; nil when the file has
    /// no tokenizer. Errors name the file and key.
    public static func tokenizerJSON(from f: GGUFFile) throws(FormatError) -> [UInt8]? {
        guard let model = f.value("tokenizer.ggml.model") else { return nil }
        func fail(_ m: String) -> FormatError { .invalidGGUF(file: f.path, message: m) }
        guard model.stringValue == "gpt2" else {
            throw FormatError.unsupported(file: f.path, tensor: nil, message: "tokenizer.ggml.model is \(model); only gpt2 (byte-level BPE) is read")
        }
        guard let toks = f.value("tokenizer.ggml.tokens")?.arrayValue else { throw fail("no 'tokenizer.ggml.tokens' array") }
        let types = f.value("tokenizer.ggml.token_type")?.arrayValue
        if let t = types, t.count != toks.count { throw fail("'tokenizer.ggml.token_type' has \(t.count) entries for \(toks.count) tokens") }
        guard let preName = f.value("tokenizer.ggml.pre")?.stringValue else { throw fail("no 'tokenizer.ggml.pre'") }
        guard let regex = knownPreTokenizers.first(where: { $0.name == preName })?.regex else {
            throw FormatError.unsupported(file: f.path, tensor: nil, message: "pre-tokenizer '\(preName)' is not one this reader knows (\(knownPreTokenizers.map(\.name).joined(separator: ", ")))")
        }
        var vocab = JSONObject()
        var added: [JSONValue] = []
        for (i, t) in toks.enumerated() {
            guard let s = t.stringValue else { throw fail("'tokenizer.ggml.tokens'[\(i)] is not a string") }
            let type = types?[i].intValue.flatMap { TokenType(rawValue: Int32($0)) } ?? .normal
            if type == .unused { continue }
            vocab[s] = .int(i)
            if type == .control || type == .userDefined {
                added.append(["id": .int(i), "content": .string(s), "single_word": false, "lstrip": false, "rstrip": false,
                              "normalized": false, "special": .bool(type == .control)])
            }
        }
        var merges: [JSONValue] = []
        for (i, m) in (f.value("tokenizer.ggml.merges")?.arrayValue ?? []).enumerated() {
            guard let s = m.stringValue, let sp = s.firstIndex(of: " ") else { throw fail("'tokenizer.ggml.merges'[\(i)] is not \"a b\"") }
            merges.append([.string(String(s[..<sp])), .string(String(s[s.index(after: sp)...]))])
        }
        let json: JSONValue = [
            "version": "1.0", "truncation": .null, "padding": .null, "added_tokens": .array(added), "normalizer": .null,
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": .string(regex)], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false],
            ]],
            "post_processor": .null,
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": .null, "unk_token": .null, "continuing_subword_prefix": .null,
                      "end_of_word_suffix": .null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": .object(vocab), "merges": .array(merges)],
        ]
        return JSONWriter.bytes(json)
    }
}
