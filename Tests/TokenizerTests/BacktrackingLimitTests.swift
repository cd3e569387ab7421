import XCTest
import Formats
@testable import Tokenizer
import TestSupport

/// Split patterns that backtrack exponentially (issue 10 §8) end in an error naming tokenizer.json
/// instead of running for minutes or overflowing the stack. Before the step budget, `(a|a)*b` on
/// 25 letters took 18–120 s and `(a+)+$` did not finish.
final class BacktrackingLimitTests: XCTestCase {
    /// The fixture tokenizer with its pre-tokenizer replaced by one Split on `regex`.
    func tokenizer(splittingOn regex: String) throws -> Tokenizer {
        var o = fixtureTokenizerObject()
        o["pre_tokenizer"] = parseJSON(#"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "#
            + jsonText(.string(regex)) + #"}, "behavior": "Isolated", "invert": false},"#
            + #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}"#)
        return try Tokenizer(json: Array(jsonText(.object(o)).utf8))
    }

    func assertBudgetError(_ regex: String, _ text: String, mentions reason: String,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let t = try tokenizer(splittingOn: regex)
        XCTAssertThrowsError(try t.encode(text), file: file, line: line) { e in
            guard let e = e as? TokenizerError else { return XCTFail("\(e)", file: file, line: line) }
            XCTAssertEqual(e.file, "tokenizer.json", file: file, line: line)
            XCTAssertTrue(e.message.hasPrefix("pre-tokenizer Split pattern \(regex.debugDescription) needs "),
                          e.message, file: file, line: line)
            XCTAssertTrue(e.message.contains(reason), e.message, file: file, line: line)
        }
    }

    func testExponentialAlternationIsRefused() throws {
        try assertBudgetError("(a|a)*b", String(repeating: "a", count: 25),
                              mentions: "more than 10000000 backtracking steps in one match attempt")
    }

    func testNestedQuantifiersAreRefused() throws {
        try assertBudgetError("(a*)*b", String(repeating: "a", count: 40), mentions: "catastrophic backtracking")
        try assertBudgetError("(a+)+$", String(repeating: "a", count: 40) + "!", mentions: "catastrophic backtracking")
        try assertBudgetError("(.*)*x", String(repeating: "y", count: 40), mentions: "catastrophic backtracking")
    }

    /// A group repeated once per two scalars recurses once per iteration; over a long text that
    /// would run off the end of the stack (a crash) rather than fail.
    func testDeepRecursionIsRefusedNotACrash() throws {
        try assertBudgetError("(?:ab)+", String(repeating: "ab", count: 200_000),
                              mentions: "recursion deeper than 248 MB of stack in one match attempt")
    }

    /// The limits are per match attempt: the same patterns on inputs without the blow-up, and a
    /// long text with many matches, tokenize as before.
    func testWellBehavedInputsStillTokenize() throws {
        let t = try tokenizer(splittingOn: "(a|a)*b")
        XCTAssertEqual(try t.encode("aab"), try tokenizer(splittingOn: "a*b").encode("aab"))
        let long = String(repeating: "ab ", count: 100_000)
        let pairs = try tokenizer(splittingOn: "(?:ab)+")
        XCTAssertEqual(try pairs.encode(long), try tokenizer(splittingOn: "ab").encode(long))
    }
}
