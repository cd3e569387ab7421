import Foundation
import Formats

/// A Hugging Face tokenizer.json byte-level BPE tokenizer that gives the ids the `tokenizers`
/// library gives.
///
/// Supported: BPE models (merges as "a b" strings or [a, b] pairs; `ignore_merges`,
/// `byte_fallback`, `unk_token`/`fuse_unk`, `continuing_subword_prefix`, `end_of_word_suffix`),
/// `added_tokens` with all their flags, no normalizer, `Split` (any behavior, regex or string
/// pattern) and `ByteLevel` pre-tokenizers, the `ByteLevel` decoder, and the `TemplateProcessing`,
/// `RobertaProcessing`, `BertProcessing`, `ByteLevel` and `Sequence` post-processors. Anything
/// else is refused at load time with a `TokenizerError` naming it.
///
/// Encoding is safe from several threads at once; the per-word cache is shared under a lock.
public final class Tokenizer: Sendable {
    /// One past the largest token id: the row count an embedding table needs.
    public let vocabSize: Int
    /// The beginning/end-of-sequence ids: from tokenizer_config.json when it names them, else from
    /// the special tokens the post-processor puts before/after the text.
    public let bosTokenId: Int32?
    public let eosTokenId: Int32?

    private let model: BPEModel
    private let addedTokens: AddedTokenMatcher
    private let preTokenizer: PreTokenizer
    private let decoder: DecoderKind
    private let postProcessors: [[TemplateItem]]
    private let tokens: [String?]
    private let tokenIds: [String: Int32]
    private let specialIds: Set<Int32>
    /// The tokenizer.json this came from, for error messages.
    public let file: String
    /// Each id's decoded bytes, `decodedBytes[decodedStart[id]..<decodedStart[id + 1]]`.
    private let decodedBytes: [UInt8]
    private let decodedStart: [Int]

    /// Loads tokenizer.json from `path`; a tokenizer_config.json beside it, if present, supplies
    /// the BOS/EOS tokens.
    public convenience init(contentsOf path: String) throws(TokenizerError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerError(file: path, message: "cannot read file")
        }
        let configPath = URL(fileURLWithPath: path).deletingLastPathComponent()
            .appendingPathComponent("tokenizer_config.json").path
        let config = FileManager.default.contents(atPath: configPath).map { [UInt8]($0) }
        try self.init(json: [UInt8](data), tokenizerConfig: config, file: path, configFile: configPath)
    }

    /// Builds a tokenizer from the bytes of a tokenizer.json (and optionally of the
    /// tokenizer_config.json that names its BOS/EOS tokens).
    public convenience init(json: [UInt8], tokenizerConfig: [UInt8]? = nil) throws(TokenizerError) {
        try self.init(json: json, tokenizerConfig: tokenizerConfig, file: "tokenizer.json",
                      configFile: "tokenizer_config.json")
    }

    init(json: [UInt8], tokenizerConfig: [UInt8]?, file: String, configFile: String) throws(TokenizerError) {
        self.file = file
        let def = try TokenizerJSONReader(file: file).read(json)
        model = def.model
        addedTokens = AddedTokenMatcher(def.addedTokens)
        preTokenizer = def.preTokenizer
        decoder = def.decoder
        postProcessors = def.postProcessors
        tokens = def.tokens
        tokenIds = def.tokenIds
        vocabSize = def.tokens.count
        specialIds = Set(def.addedTokens.filter(\.special).map(\.id))

        var bytes: [UInt8] = []
        var starts: [Int] = [0]
        starts.reserveCapacity(def.tokens.count + 1)
        for token in def.tokens {
            if let token {
                // Hugging Face's ByteLevel decoder keeps a token verbatim if any character of it
                // is outside the byte table (e.g. an added "<|im_start|>" written with other chars).
                if case .byteLevel = def.decoder, let raw = ByteLevel.decode(token) {
                    bytes += raw
                } else {
                    bytes += Array(token.utf8)
                }
            }
            starts.append(bytes.count)
        }
        decodedBytes = bytes
        decodedStart = starts

        var bos: Int32? = nil, eos: Int32? = nil
        if let first = def.postProcessors.first {
            if case .tokens(let ids)? = first.first, first.count > 1 { bos = ids.first }
            if case .tokens(let ids)? = first.last, first.count > 1 { eos = ids.last }
        }
        if let tokenizerConfig {
            let names = try Self.configuredSpecialTokens(tokenizerConfig, file: configFile)
            if let name = names.bos { bos = def.tokenIds[name] }
            if let name = names.eos { eos = def.tokenIds[name] }
        }
        bosTokenId = bos
        eosTokenId = eos
    }

    private static func configuredSpecialTokens(_ bytes: [UInt8], file: String) throws(TokenizerError) -> (bos: String?, eos: String?) {
        let root: JSONValue
        do {
            root = try JSONParser.parse(bytes)
        } catch {
            throw TokenizerError(file: file, message: "invalid JSON: \(error)")
        }
        func name(_ key: String) -> String? {
            guard let v = root[key] else { return nil }
            return v.stringValue ?? v["content"]?.stringValue
        }
        return (name("bos_token"), name("eos_token"))
    }

    // MARK: encoding

    /// Token ids of `text`. With `addSpecialTokens`, the post-processor's template is applied
    /// (e.g. a BOS id in front); without it, exactly the ids of the text.
    ///
    /// Throws when a `Split` pattern of tokenizer.json cannot be matched within the regex engine's
    /// step budget (catastrophic backtracking), naming the file and the pattern.
    public func encode(_ text: String, addSpecialTokens: Bool = false) throws(TokenizerError) -> [Int32] {
        var text = text
        var ids: [Int32] = []
        var failure: PatternLimitError?
        text.withUTF8 { u in
            do { try encode(utf8: u, into: &ids) } catch { failure = error as? PatternLimitError }
        }
        if let f = failure {
            throw TokenizerError(file: file, message: "pre-tokenizer Split pattern \(f.pattern.debugDescription) needs \(f.reason) at character \(f.offset) of a piece of the text; simplify the pattern")
        }
        if addSpecialTokens {
            for template in postProcessors {
                var wrapped: [Int32] = []
                wrapped.reserveCapacity(ids.count + 4)
                for item in template {
                    switch item {
                    case .sequence: wrapped += ids
                    case .tokens(let t): wrapped += t
                    }
                }
                ids = wrapped
            }
        }
        return ids
    }

    /// Appends the ids of valid UTF-8 `text` (no special tokens added) to `ids`.
    func encode(utf8 text: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) throws(PatternLimitError) {
        ids.reserveCapacity(ids.count + text.count / 3)
        var pieces: [Piece] = []
        if addedTokens.isEmpty {
            pieces.append(.text(0, text.count))
        } else {
            addedTokens.split(text, into: &pieces)
        }
        var splitScratch = SplitScratch()
        var mergeScratch = MergeScratch()
        let model = self.model
        for piece in pieces {
            switch piece {
            case .token(let id):
                ids.append(id)
            case .text(let lo, let hi):
                try preTokenizer.run(text, lo, hi, scratch: &splitScratch) { word in
                    model.tokenize(word, into: &ids, scratch: &mergeScratch)
                }
            }
        }
    }

    // MARK: decoding

    /// The text of `ids`. Ids outside the vocabulary are skipped, as Hugging Face does; byte
    /// sequences that are not valid UTF-8 (a character cut between tokens) become U+FFFD.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        switch decoder {
        case .byteLevel:
            var bytes: [UInt8] = []
            bytes.reserveCapacity(ids.count * 4)
            decodedBytes.withUnsafeBufferPointer { arena in
                decodedStart.withUnsafeBufferPointer { start in
                    // An id with no token has an empty range, so it contributes nothing.
                    for id in ids where id >= 0 && Int(id) < vocabSize {
                        if skipSpecialTokens && specialIds.contains(id) { continue }
                        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: arena[start[Int(id)]..<start[Int(id) + 1]]))
                    }
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        case .joinWithSpaces:
            var parts: [String] = []
            for id in ids {
                guard id >= 0, Int(id) < tokens.count, let t = tokens[Int(id)] else { continue }
                if skipSpecialTokens && specialIds.contains(id) { continue }
                parts.append(t)
            }
            return parts.joined(separator: " ")
        }
    }

    // MARK: vocabulary

    /// The id of a token as spelled in tokenizer.json (byte-level spelling, e.g. "Ġthe").
    public func id(of token: String) -> Int32? { tokenIds[token] }

    /// The spelling of an id in tokenizer.json.
    public func token(for id: Int32) -> String? {
        guard id >= 0, Int(id) < tokens.count else { return nil }
        return tokens[Int(id)]
    }

    /// Whether `id` is an added token marked special (skipped by `decode(_:skipSpecialTokens: true)`).
    public func isSpecial(_ id: Int32) -> Bool { specialIds.contains(id) }
}
