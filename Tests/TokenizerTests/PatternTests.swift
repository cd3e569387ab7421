import XCTest
@testable import Tokenizer
import TestSupport

/// Matches of `pattern` in `text` as substrings.
func matches(_ pattern: any SplitPattern, _ text: String) -> [String] {
    let scalars = Array(text.unicodeScalars)
    return matchRanges(pattern, text).map { String(String.UnicodeScalarView(scalars[$0.0..<$0.1])) }
}

/// Matches of `pattern` in `text` as scalar index ranges.
func matchRanges(_ pattern: any SplitPattern, _ text: String) -> [(Int, Int)] {
    var st = ScalarText()
    let bytes = Array(text.utf8)
    let table = pattern.table
    let bmp = table == .hand ? ScalarTable.bmp.hand : ScalarTable.bmp.category
    bytes.withUnsafeBufferPointer { b in bmp.withUnsafeBufferPointer { st.load(b, table: table, bmp: $0) } }
    var out: [Int] = []
    st.withView { try! pattern.appendMatches(in: $0, to: &out) }
    return stride(from: 0, to: out.count, by: 2).map { (out[$0], out[$0 + 1]) }
}

/// Strings built from scalars that sit on the edges of the pre-tokenizer classes: every general
/// category the patterns distinguish, the whitespace ICU and Oniguruma disagree on, CR/LF, '/'.
func adversarialStrings(count: Int, seed: UInt64) -> [String] {
    let alphabet: [UInt32] = [
        0x41, 0x5A, 0x61, 0x7A, 0x30, 0x39, 0x20, 0x20, 0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C, 0x85, 0xA0,
        0x1680, 0x2000, 0x2028, 0x2029, 0x202F, 0x3000, 0x200B, 0x200D, 0x1C, 0x2F, 0x27, 0x2E, 0x2C,
        0x21, 0x2D, 0x5F, 0x28, 0x29, 0x2A, 0x22, 0xE9, 0xC6, 0xDF, 0x1C5, 0x2B0, 0x2B7, 0x301, 0x308,
        0x20DD, 0x903, 0x65E5, 0x3042, 0x30C6, 0x5D0, 0x627, 0x660, 0x216B, 0xBD, 0xB2, 0x1F642, 0x1F44D,
        0x1F3FD, 0xFB01, 0x3B1, 0x391, 0x410, 0x430, 0x2160, 0x24B6, 0x20AC, 0xA9, 0x1D400, 0xE000, 0x378,
        0x73, 0x74, 0x6C, 0x64, 0x6D, 0x72, 0x76, 0x65,
    ]
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in
        let n = Int.random(in: 0...40, using: &rng)
        var s = String.UnicodeScalarView()
        for _ in 0..<n { s.append(Unicode.Scalar(alphabet.randomElement(using: &rng)!)!) }
        return String(s)
    }
}

final class PatternTests: XCTestCase {
    let tekkenHand = TekkenPattern()
    let tekkenGeneral = try! RegexPattern(TekkenPattern.source)
    let gpt2Hand = GPT2Pattern()
    let gpt2General = try! RegexPattern(GPT2Pattern.source)

    private func corpus() -> [String] {
        var texts = fixtureJSON("text/tokenizer-cases.json")["cases"]!.arrayValue!.map { $0["text"]!.stringValue! }
        texts.append(fixtureText("text/kjv-heldout.txt"))
        texts.append(fixtureText("text/kjv-calib.txt"))
        texts += adversarialStrings(count: 3000, seed: 42)
        return texts
    }

    func testTekkenMatcherEqualsGeneralEngine() throws {
        for text in corpus() {
            let hand = matchRanges(tekkenHand, text), general = matchRanges(tekkenGeneral, text)
            XCTAssertTrue(hand.elementsEqual(general, by: ==), "Tekken split of \(text.prefix(200).debugDescription)")
        }
    }

    func testGPT2MatcherEqualsGeneralEngine() throws {
        for text in corpus() + ["it's we're they've I'm you'll he'd 'S 'x '"] {
            let hand = matchRanges(gpt2Hand, text), general = matchRanges(gpt2General, text)
            XCTAssertTrue(hand.elementsEqual(general, by: ==), "GPT-2 split of \(text.prefix(200).debugDescription)")
        }
    }

    func testTekkenSplitsAsOniguruma() throws {
        XCTAssertEqual(matches(tekkenHand, "Hello  world"), ["Hello", " ", " world"])
        XCTAssertEqual(matches(tekkenHand, "CamelCaseWordsAndALLCAPS mixedCASE"),
                       ["Camel", "Case", "Words", "And", "ALLCAPS", " mixed", "CASE"])
        XCTAssertEqual(matches(tekkenHand, "a/b/c path\r\nwindows"), ["a", "/b", "/c", " path", "\r\n", "windows"])
        XCTAssertEqual(matches(tekkenHand, "x!\n/y"), ["x", "!\n/", "y"])
        XCTAssertEqual(matches(tekkenHand, "2026: 3.14"), ["2", "0", "2", "6", ":", " ", "3", ".", "1", "4"])
        XCTAssertEqual(matches(tekkenHand, "and \u{A0}non"), ["and", " ", "\u{A0}non"])
        XCTAssertEqual(matches(tekkenHand, "tabs\tand\n\n\nx  "), ["tabs", "\tand", "\n\n\n", "x", "  "])
        // \s is Unicode White_Space: U+000B and U+0085 are spaces to Oniguruma (not to ICU).
        XCTAssertEqual(matches(tekkenHand, "a\u{0B}\u{85}b"), ["a", "\u{0B}", "\u{85}b"])
        // A combining mark alone after a space: the optional prefix is tried first, then skipped.
        XCTAssertEqual(matches(tekkenHand, "\u{301} "), ["\u{301}", " "])
    }

    func testGeneralEngineSemantics() throws {
        func m(_ pattern: String, _ text: String) throws -> [String] { matches(try RegexPattern(pattern), text) }
        XCTAssertEqual(try m(#"\s+(?!\S)|\s+"#, "a   b  "), ["  ", " ", "  "])
        XCTAssertEqual(try m("a|ab", "ab"), ["a"])             // first alternative wins, not longest
        XCTAssertEqual(try m("a+?", "aaa"), ["a", "a", "a"])
        XCTAssertEqual(try m("a{2,3}", "aaaaaaa"), ["aaa", "aaa"])
        XCTAssertEqual(try m("a{,2}b", "aaab"), ["aab"])
        XCTAssertEqual(try m("a{x", "a{x"), ["a{x"])           // not an interval: literal brace
        XCTAssertEqual(try m("a*+a", "aaa"), [])               // possessive gives nothing back
        XCTAssertEqual(try m("(?>a*)b|a", "aab"), ["aab"])
        XCTAssertEqual(try m("(?i:'s|'t)|x", "'S 'T x X"), ["'S", "'T", "x"])
        XCTAssertEqual(try m("a(?i)b|c", "aB c ac"), ["aB", "ac"])  // (?i) covers the rest of the group
        XCTAssertEqual(try m("(?<=a)b", "ab cb"), ["b"])
        XCTAssertEqual(try m("(?<!a)b", "ab cb"), ["b"])
        XCTAssertEqual(try m(#"\bfoo\b"#, "foo food foo"), ["foo", "foo"])
        XCTAssertEqual(try m(#"[^\s\p{L}]+"#, "ab, 12!"), [",", "12!"])
        XCTAssertEqual(try m(#"[\p{Lu}\d_-]+"#, "ABc_9-x"), ["AB", "_9-"])
        XCTAssertEqual(try m(#"\p{N}{1,3}"#, "1234567"), ["123", "456", "7"])
        XCTAssertEqual(try m("x*", "axb"), ["", "x", ""])      // empty matches, none right after a match
        XCTAssertEqual(try m(".", "a\nb"), ["a", "b"])
        XCTAssertEqual(try m("(?m:.)", "a\nb"), ["a", "\n", "b"])
        XCTAssertEqual(try m("^a|b$", "a\nab\nb"), ["a", "a", "b", "b"])
        XCTAssertEqual(try m(#"\x41\x{1F642}\u00e9"#, "A\u{1F642}\u{E9}"), ["A\u{1F642}\u{E9}"])
        XCTAssertEqual(try m(#"[\S\n]+"#, "a b\nc"), ["a", "b\nc"])
        XCTAssertEqual(try m(#"(?:ab)+"#, "ababa"), ["abab"])
        XCTAssertEqual(try m(#"(a|b)*c"#, "abbac"), ["abbac"])
    }

    func testGeneralEngineRefusesWhatItDoesNotImplement() throws {
        for (pattern, fragment) in [
            (#"(a)\1"#, "backreferences"),
            (#"\p{Han}"#, "unsupported Unicode property \\p{Han}"),
            ("[[:alpha:]]", "POSIX bracket"),
            ("[a-z&&[^aeiou]]", "intersection"),
            ("[a[b]]", "nested character classes"),
            ("(?x) a", "unsupported regex option 'x'"),
            (#"\K"#, "unsupported escape"),
            ("*a", "target of repeat operator"),
            ("(a", "missing ')'"),
            ("a)", "unmatched ')'"),
            ("[z-a]", "empty range"),
        ] {
            XCTAssertThrowsError(try RegexPattern(pattern), pattern) { error in
                let message = (error as? RegexSyntaxError)?.message ?? ""
                XCTAssertTrue(message.contains(fragment), "\(pattern): \(message)")
            }
        }
    }

    func testLongRunsDoNotRecurse() throws {
        let text = String(repeating: " ", count: 200_000) + "x" + String(repeating: "y", count: 200_000)
        XCTAssertEqual(matchRanges(tekkenGeneral, text).count, 2)
        XCTAssertEqual(matchRanges(tekkenHand, text).count, 2)
    }

    /// End to end: the fixture tokenizer (hand-written matcher, long texts cut into chunks) and the
    /// same tokenizer.json with the regex wrapped in a group (so the general engine runs on the
    /// whole text at once) give identical ids.
    func testGeneralEngineTokenizerGivesSameIds() throws {
        var o = fixtureTokenizerObject()
        let wrapped = "(?:" + TekkenPattern.source + ")"
        o["pre_tokenizer"] = parseJSON(#"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "#
            + jsonText(.string(wrapped)) + #"}, "behavior": "Isolated", "invert": false},"#
            + #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}"#)
        let general = try tokenizer(from: o)
        var long = adversarialStrings(count: 6000, seed: 7).joined(separator: "\n")
        long += "\n" + fixtureText("text/kjv-calib.txt")
        XCTAssertGreaterThan(long.utf8.count, 2 * PreTokenizer.chunkBytes)
        for text in [long, fixtureText("text/kjv-heldout.txt")] {
            XCTAssertEqual(try general.encode(text), try fixtureTokenizer.encode(text))
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let text = fixtureText("text/kjv-heldout.txt")
        _ = try general.encode(text)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print(String(format: "general regex engine, kjv-heldout.txt: %.1f MB/s", Double(text.utf8.count) / seconds / 1e6))
    }
}
