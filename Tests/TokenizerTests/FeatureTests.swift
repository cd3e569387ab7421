import XCTest
import Formats
@testable import Tokenizer
import TestSupport

/// Features the fixture tokenizer does not use, on crafted tokenizer.json files, with the
/// results Hugging Face tokenizers' own tests and semantics give.
final class FeatureTests: XCTestCase {
    /// A tiny character-level BPE without byte-level spelling.
    private func small(fuseUnknown: Bool = false, byteFallback: Bool = false, ignoreMerges: Bool = false,
                       prefix: String = "null", suffix: String = "null",
                       vocab: String? = nil, merges: String? = nil) throws -> Tokenizer {
        let v = vocab ?? #"{"[UNK]": 0, "h": 1, "e": 2, "l": 3, "o": 4, "he": 5, "ll": 6, "hell": 7, "hello": 8, "<0xE2>": 9, "<0x82>": 10, "<0xAC>": 11, "oh": 12}"#
        let m = merges ?? #"["h e", "l l", "he ll", "hell o"]"#
        let json = """
        {"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
         "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Removed", "invert": false},
         "post_processor": null, "decoder": null,
         "model": {"type": "BPE", "dropout": null, "unk_token": "[UNK]", "continuing_subword_prefix": \(prefix),
                   "end_of_word_suffix": \(suffix), "fuse_unk": \(fuseUnknown), "byte_fallback": \(byteFallback),
                   "ignore_merges": \(ignoreMerges), "vocab": \(v), "merges": \(m)}}
        """
        return try Tokenizer(json: Array(json.utf8))
    }

    func testCharacterLevelModelUnknownsAndFallback() throws {
        let t = try small()
        XCTAssertEqual(try t.encode("hello"), [8])
        XCTAssertEqual(try t.encode("hello hell he"), [8, 7, 5])
        XCTAssertEqual(try t.encode("hexx"), [5, 0, 0])
        XCTAssertEqual(t.decode([5, 0]), "he [UNK]")  // no decoder: tokens joined with spaces
        let fused = try small(fuseUnknown: true)
        XCTAssertEqual(try fused.encode("hexxh"), [5, 0, 1])
        let fallback = try small(byteFallback: true)
        XCTAssertEqual(try fallback.encode("he\u{20AC}"), [5, 9, 10, 11])
        XCTAssertEqual(try fallback.encode("hex"), [5, 0])  // no <0x78>: unknown instead
    }

    func testIgnoreMerges() throws {
        XCTAssertEqual(try small().encode("oh"), [4, 1])
        XCTAssertEqual(try small(ignoreMerges: true).encode("oh"), [12])
    }

    func testContinuingSubwordPrefixAndEndOfWordSuffix() throws {
        let prefixed = try small(
            prefix: "\"##\"",
            vocab: ###"{"[UNK]": 0, "h": 1, "##e": 2, "##l": 3, "##o": 4, "he": 5, "##ll": 6, "hell": 7, "hello": 8}"###,
            merges: ###"["h ##e", "##l ##l", "he ##ll", "hell ##o"]"###)
        XCTAssertEqual(try prefixed.encode("hello"), [8])
        XCTAssertEqual(try prefixed.encode("hel"), [5, 3])
        XCTAssertEqual(try prefixed.encode("oh"), [0, 0])
        let suffixed = try small(
            suffix: #""</w>""#,
            vocab: #"{"[UNK]": 0, "h": 1, "e</w>": 2, "he</w>": 3, "e": 4}"#,
            merges: #"[["h", "e</w>"]]"#)
        XCTAssertEqual(try suffixed.encode("he"), [3])
        XCTAssertEqual(try suffixed.encode("eh"), [4, 0])
    }

    func testMergesAsStringsEqualMergesAsPairs() throws {
        var o = fixtureTokenizerObject()
        var m = o["model"]!.objectValue!
        m["merges"] = .array(m["merges"]!.arrayValue!.map { pair in
            let p = pair.arrayValue!
            return .string(p[0].stringValue! + " " + p[1].stringValue!)
        })
        o["model"] = .object(m)
        let t = try tokenizer(from: o)
        let text = fixtureText("text/kjv-heldout.txt")
        XCTAssertEqual(try t.encode(text), try fixtureTokenizer.encode(text))
    }

    func testAddedTokenFlags() throws {
        var o = fixtureTokenizerObject()
        var added = o["added_tokens"]!.arrayValue!
        added += parseJSON("""
        [{"id": 4096, "content": "<mask>", "single_word": true, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
         {"id": 4097, "content": "[L]", "single_word": false, "lstrip": true, "rstrip": false, "normalized": false, "special": true},
         {"id": 4098, "content": "[R]", "single_word": false, "lstrip": false, "rstrip": true, "normalized": false, "special": false},
         {"id": 4099, "content": "[N]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": false}]
        """).arrayValue!
        o["added_tokens"] = .array(added)
        let t = try tokenizer(from: o)
        let plain = fixtureTokenizer
        XCTAssertEqual(t.vocabSize, 4100)

        // Hugging Face's test_single_word_is_correct.
        XCTAssertEqual(try t.encode("<mask> My name <mask> A<mask> <mask>ony <mask>"),
                       try [4096] + plain.encode(" My name ") + [4096] + plain.encode(" A<mask> <mask>ony ") + [4096])
        // Punctuation is not a word character, a combining mark is.
        XCTAssertEqual(try t.encode("<mask>, <mask>- \u{25CC}\u{330}<mask>"),
                       try [4096] + plain.encode(", ") + [4096] + plain.encode("- \u{25CC}\u{330}<mask>"))
        // lstrip takes all whitespace before (Unicode White_Space, not only ' ').
        XCTAssertEqual(try t.encode("a [L] b \u{3000}[L]c"),
                       try plain.encode("a") + [4097] + plain.encode(" b") + [4097] + plain.encode("c"))
        XCTAssertEqual(try t.encode("a[R] \t b[R]"), try plain.encode("a") + [4098] + plain.encode("b") + [4098])
        XCTAssertEqual(try t.encode("x[N]y"), try plain.encode("x") + [4099] + plain.encode("y"))
        // Skipping special tokens drops <mask> and [L] but keeps the non-special [R] and [N].
        XCTAssertEqual(t.decode(try t.encode("<mask> a[L][R][N]"), skipSpecialTokens: true), " a[R][N]")
    }

    private func preTokens(_ p: PreTokenizer, _ text: String) -> [String] {
        var out: [String] = []
        var scratch = SplitScratch()
        var text = text
        text.withUTF8 { buf in
            try! p.run(buf, 0, buf.count, scratch: &scratch) { out.append(String(decoding: $0, as: UTF8.self)) }
        }
        return out
    }

    func testSplitBehaviors() throws {
        let expected: [SplitBehavior: [String]] = [
            .removed: ["The", "final", "countdown"],
            .isolated: ["The", "-", "final", "-", "-", "countdown"],
            .mergedWithPrevious: ["The-", "final-", "-", "countdown"],
            .mergedWithNext: ["The", "-final", "-", "-countdown"],
            .contiguous: ["The", "-", "final", "--", "countdown"],
        ]
        for behavior in SplitBehavior.allCases {
            let literal = PreTokenizer(splits: [SplitStep(pattern: LiteralPattern("-"), behavior: behavior, invert: false)], byteLevel: nil)
            XCTAssertEqual(preTokens(literal, "The-final--countdown"), expected[behavior], behavior.rawValue)
            let regex = PreTokenizer(splits: [SplitStep(pattern: try! RegexPattern("-"), behavior: behavior, invert: false)], byteLevel: nil)
            XCTAssertEqual(preTokens(regex, "The-final--countdown"), expected[behavior], behavior.rawValue)
        }
        let inverted = PreTokenizer(splits: [SplitStep(pattern: LiteralPattern("-"), behavior: .removed, invert: true)], byteLevel: nil)
        XCTAssertEqual(preTokens(inverted, "The-final--countdown"), ["-", "-", "-"])
    }

    func testByteLevelPrefixSpaceAndRegex() throws {
        let gpt2 = PreTokenizer(splits: [], byteLevel: ByteLevelStep(addPrefixSpace: true, useRegex: true))
        XCTAssertEqual(preTokens(gpt2, "Hello my friend, how is your day going?"),
                       [" Hello", " my", " friend", ",", " how", " is", " your", " day", " going", "?"])
        XCTAssertEqual(preTokens(gpt2, " Hello"), [" Hello"])
        let noPrefix = PreTokenizer(splits: [], byteLevel: ByteLevelStep(addPrefixSpace: false, useRegex: true))
        XCTAssertEqual(preTokens(noPrefix, "Hello there\nHello there       dear"),
                       ["Hello", " there", "\n", "Hello", " there", "      ", " dear"])
        // The prefix goes on every piece reaching ByteLevel, not just the first.
        let afterSplit = PreTokenizer(splits: [SplitStep(pattern: LiteralPattern("|"), behavior: .removed, invert: false)],
                                      byteLevel: ByteLevelStep(addPrefixSpace: true, useRegex: false))
        XCTAssertEqual(preTokens(afterSplit, "a b|c"), [" a b", " c"])
    }

    func testGPT2StyleTokenizerJSON() throws {
        var o = fixtureTokenizerObject()
        o["pre_tokenizer"] = parseJSON(#"{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}"#)
        let t = try tokenizer(from: o)
        XCTAssertEqual(try t.encode("Hello world"), try fixtureTokenizer.encode(" Hello world"))
        XCTAssertEqual(t.decode(try t.encode("Hello world")), " Hello world")
        XCTAssertEqual(try t.encode(""), [])
    }

    func testTemplatePostProcessor() throws {
        let template = #"""
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": "</s>", "type_id": 0}}],
         "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]},
                            "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}}
        """#
        for processor in [
            template,
            #"{"type": "Sequence", "processors": [{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}, "# + template + "]}",
            #"{"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1], "trim_offsets": true, "add_prefix_space": false}"#,
        ] {
            var o = fixtureTokenizerObject()
            o["post_processor"] = parseJSON(processor)
            let t = try tokenizer(from: o)
            XCTAssertEqual(try t.encode("Hello world", addSpecialTokens: true), [1, 751, 281, 81, 1197, 2])
            XCTAssertEqual(try t.encode("Hello world"), [751, 281, 81, 1197])
            XCTAssertEqual(t.bosTokenId, 1)
            XCTAssertEqual(t.eosTokenId, 2)
        }
        var o = fixtureTokenizerObject()
        o["post_processor"] = parseJSON(#"{"type": "TemplateProcessing", "single": "<s> $A", "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}"#)
        let t = try tokenizer(from: o)
        XCTAssertEqual(try t.encode("Hello world", addSpecialTokens: true), [1, 751, 281, 81, 1197])
        XCTAssertEqual(t.bosTokenId, 1)
        XCTAssertNil(t.eosTokenId)
    }

    func testBosEosFromTokenizerConfig() throws {
        let o = fixtureTokenizerObject()
        XCTAssertNil(try tokenizer(from: o).bosTokenId)
        let t = try tokenizer(from: o, config: #"{"bos_token": {"content": "</s>"}, "eos_token": "<unk>"}"#)
        XCTAssertEqual(t.bosTokenId, 2)
        XCTAssertEqual(t.eosTokenId, 0)
    }

    func testSHA256KnownVectors() throws {
        XCTAssertEqual(SHA256.hex([UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var h = SHA256()
        for _ in 0..<1000 { h.update([UInt8](repeating: 0x61, count: 1000)) }
        XCTAssertEqual(h.finalize().map { String(format: "%02x", $0) }.joined(),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
