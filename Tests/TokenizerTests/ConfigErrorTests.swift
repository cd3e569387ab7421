import XCTest
import Formats
@testable import Tokenizer
import TestSupport

/// Every unsupported feature is refused at load time, naming the file and the feature.
final class ConfigErrorTests: XCTestCase {
    private func assertRefused(_ edit: (inout JSONObject) -> Void, _ expected: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        var o = fixtureTokenizerObject()
        edit(&o)
        XCTAssertThrowsError(try tokenizer(from: o), file: file, line: line) { error in
            XCTAssertEqual("\(error)", expected, file: file, line: line)
        }
    }

    private func editModel(_ o: inout JSONObject, _ key: String, _ value: JSONValue) {
        var m = o["model"]!.objectValue!
        m[key] = value
        o["model"] = .object(m)
    }

    private func preTokenizers(_ list: [String]) -> JSONValue {
        parseJSON(#"{"type": "Sequence", "pretokenizers": ["# + list.joined(separator: ",") + "]}")
    }

    func testNormalizer() throws {
        assertRefused({ $0["normalizer"] = parseJSON(#"{"type": "NFKC"}"#) },
                      #"tokenizer.json: unsupported normalizer "NFKC""#)
        assertRefused({ $0["normalizer"] = parseJSON(#"{"type": "Sequence", "normalizers": [{"type": "Lowercase"}]}"#) },
                      #"tokenizer.json: unsupported normalizer "Lowercase""#)
    }

    func testPreTokenizers() throws {
        assertRefused({ $0["pre_tokenizer"] = parseJSON(#"{"type": "Whitespace"}"#) },
                      #"tokenizer.json: unsupported pre_tokenizer "Whitespace""#)
        assertRefused({ $0["pre_tokenizer"] = self.preTokenizers([
            #"{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}"#,
            #"{"type": "Split", "pattern": {"String": " "}, "behavior": "Isolated", "invert": false}"#,
        ]) }, #"tokenizer.json: pre_tokenizer "Split" after "ByteLevel" is not supported (ByteLevel must be the last pre-tokenizer)"#)
        assertRefused({ $0["pre_tokenizer"] = parseJSON(#"{"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Shuffled"}"#) },
                      #"tokenizer.json: unsupported pre_tokenizer Split behavior "Shuffled""#)
        assertRefused({ $0["pre_tokenizer"] = parseJSON(#"{"type": "Split", "pattern": {"Regex": "(a)\\1"}, "behavior": "Isolated"}"#) },
                      #"tokenizer.json: pre_tokenizer Split regex "(a)\1": backreferences (\1) are not supported"#)
        assertRefused({ $0["pre_tokenizer"] = parseJSON(#"{"type": "Split", "pattern": {"Regex": "\\p{Han}+"}, "behavior": "Isolated"}"#) },
                      #"tokenizer.json: pre_tokenizer Split regex "\p{Han}+": unsupported Unicode property \p{Han}"#)
        assertRefused({ $0["pre_tokenizer"] = parseJSON(#"{"type": "Split", "pattern": {"String": ""}, "behavior": "Isolated"}"#) },
                      #"tokenizer.json: pre_tokenizer Split has an empty String pattern"#)
    }

    func testModel() throws {
        assertRefused({ self.editModel(&$0, "type", .string("WordPiece")) },
                      #"tokenizer.json: unsupported model "WordPiece" (only BPE is implemented)"#)
        assertRefused({ self.editModel(&$0, "dropout", .number(0.1)) },
                      "tokenizer.json: model.dropout 0.1 is not supported (BPE dropout makes encoding random)")
        assertRefused({ self.editModel(&$0, "unk_token", .string("<nope>")) },
                      #"tokenizer.json: model.unk_token "<nope>" is not in model.vocab"#)
        assertRefused({ self.editModel(&$0, "merges", parseJSON(#"[["t", "h"], ["q", "<nope>"]]"#)) },
                      #"tokenizer.json: model.merges[1]: token "<nope>" is not in model.vocab"#)
        assertRefused({ self.editModel(&$0, "merges", parseJSON(#"["t h", "oops"]"#)) },
                      #"tokenizer.json: model.merges[1] "oops" is not two tokens separated by a space"#)
        assertRefused({ $0["model"] = nil }, #"tokenizer.json: missing "model" object"#)
    }

    func testDecoderPostProcessorAndTruncation() throws {
        assertRefused({ $0["decoder"] = parseJSON(#"{"type": "Metaspace"}"#) },
                      #"tokenizer.json: unsupported decoder "Metaspace""#)
        assertRefused({ $0["post_processor"] = parseJSON(#"{"type": "Fancy"}"#) },
                      #"tokenizer.json: unsupported post_processor "Fancy""#)
        assertRefused({ $0["truncation"] = parseJSON(#"{"max_length": 8}"#) },
                      "tokenizer.json: truncation is set; encoding with truncation is not supported (set it to null)")
    }

    func testAddedTokens() throws {
        assertRefused({
            $0["added_tokens"] = parseJSON(#"[{"id": 9000, "content": "<extra>", "special": true}]"#)
        }, #"tokenizer.json: added_tokens[0] "<extra>" has id 9000 but Hugging Face tokenizers would give it id 4096"#)
    }

    func testUnreadableInput() throws {
        XCTAssertThrowsError(try Tokenizer(contentsOf: "/nonexistent/tokenizer.json")) { error in
            XCTAssertEqual("\(error)", "/nonexistent/tokenizer.json: cannot read file")
        }
        XCTAssertThrowsError(try Tokenizer(json: Array("{\"model\": ".utf8))) { error in
            XCTAssertTrue("\(error)".hasPrefix("tokenizer.json: invalid JSON: "), "\(error)")
        }
    }
}
