import XCTest
@testable import Formats
import TestSupport

final class JSONTests: XCTestCase {
    func testWriterCompactAndPretty() {
        let v: JSONValue = ["b": 1, "a": [1.5, "x", true, .null], "c": ["nested": []], "d": [:]]
        XCTAssertEqual(JSONWriter.string(v), #"{"b":1,"a":[1.5,"x",true,null],"c":{"nested":[]},"d":{}}"#)
        XCTAssertEqual(JSONWriter.string(v, pretty: false, sortKeys: true), #"{"a":[1.5,"x",true,null],"b":1,"c":{"nested":[]},"d":{}}"#)
        XCTAssertEqual(JSONWriter.string(v, pretty: true), """
        {
          "b": 1,
          "a": [1.5, "x", true, null],
          "c": {
            "nested": []
          },
          "d": {}
        }
        """)
        XCTAssertEqual(JSONWriter.string(["m": [[1, 2], [3]]], pretty: true), """
        {
          "m": [
            [1, 2],
            [3]
          ]
        }
        """)
    }

    func testWriterEscapesStrings() {
        let s = "quote\" backslash\\ newline\n tab\t cr\r bell\u{07} del\u{7F} é 😀 /"
        let text = JSONWriter.string(.string(s))
        XCTAssertEqual(text, #""quote\" backslash\\ newline\n tab\t cr\r bell\u0007 del\u007f é 😀 /""#)
        XCTAssertEqual(try JSONParser.parse(text), .string(s))
    }

    func testWriterNumbers() {
        XCTAssertEqual(JSONWriter.string([0, -0.0, 42, -7, 1e-5, 0.1, 2.5e300, 9007199254740993, 123456789012]),
                       "[0,0,42,-7,1e-05,0.1,2.5e+300,9007199254740992,123456789012]")
        XCTAssertEqual(JSONWriter.string(.float(1e-5)), "1e-05")
        XCTAssertEqual(JSONWriter.string(.float(2.5)), "2.5")
        // Non-finite numbers have no JSON spelling: null by default, Python's literals on request.
        let nf: JSONValue = [.number(.infinity), .number(-.infinity), .number(.nan)]
        XCTAssertEqual(JSONWriter.string(nf), "[null,null,null]")
        XCTAssertEqual(JSONWriter.string(nf, options: .init(nonFinite: .pythonLiterals)), "[Infinity,-Infinity,NaN]")
        XCTAssertTrue(JSONWriter.containsNonFinite(["a": nf]))
        XCTAssertFalse(JSONWriter.containsNonFinite(["a": [1, 2]]))
    }

    func testWriteThenParseRoundTripsFixtureConfigs() throws {
        for dir in [Fixtures.tinyMoE, Fixtures.tinyDense] {
            let v = try JSONParser.parse(readFile(dir + "/config.json"))
            for pretty in [false, true] {
                let text = JSONWriter.string(v, options: .init(pretty: pretty, nonFinite: .pythonLiterals))
                XCTAssertEqual(try JSONParser.parse(text), v)
            }
        }
        // A safetensors header too (the fixtures' tokenizer.json is large and has every escape).
        let tok = try JSONParser.parse(readFile(Fixtures.tinyMoE + "/tokenizer.json"))
        XCTAssertEqual(try JSONParser.parse(JSONWriter.bytes(tok)), tok)
    }

    func testParserNonFiniteLiterals() throws {
        let v = try JSONParser.parse(#"[Infinity, -Infinity, NaN, {"__float__": "-Infinity"}, {"__float__": "NaN"}]"#)
        let a = try XCTUnwrap(v.arrayValue)
        XCTAssertEqual(a[0].doubleValue, .infinity)
        XCTAssertEqual(a[1].doubleValue, -.infinity)
        XCTAssertTrue(a[2].doubleValue!.isNaN)
        XCTAssertEqual(a[3].doubleValue, -.infinity)
        XCTAssertTrue(a[4].doubleValue!.isNaN)
        XCTAssertThrowsError(try JSONParser.parse("-Inf"))
        XCTAssertThrowsError(try JSONParser.parse("nan"))
    }

    func testParserIntegersAndFloats() throws {
        XCTAssertEqual(try JSONParser.parse("[0, -0, 123456789012345, -98, 1234567890123456789, 1.5e3, 2E-2]"),
                       [0, 0, 123456789012345, -98, 1234567890123456789, 1500, 0.02])
        for bad in ["01", "1.", ".5", "-", "1e", "+1", "0x10"] {
            XCTAssertThrowsError(try JSONParser.parse(bad), bad)
        }
    }

    func testParseErrorsCarryThePath() {
        do {
            _ = try JSONParser.parse(#"{"a": {"b": [1, 2, {"c": tru}]}}"#)
            XCTFail()
        } catch {
            XCTAssertEqual(error.path, ["a", "b", "[2]", "c"])
            XCTAssertEqual(error.description, "unexpected character 't' at byte 25 (in a.b.[2].c)")
        }
        do {
            _ = try JSONParser.parse(#"{"k": 1, "k": 2}"#)
            XCTFail()
        } catch {
            XCTAssertEqual(error.duplicateKey, "k")
            XCTAssertEqual(error.path, [])
            XCTAssertEqual(error.description, "duplicate key \"k\" at byte 9")
        }
    }

    /// Small objects are searched linearly, large ones through an index: both must behave alike.
    func testObjectsKeepOrderAcrossTheIndexThreshold() {
        var o = JSONObject()
        for i in 0..<40 { o["k\(i)"] = .int(i) }
        XCTAssertEqual(o.keys, (0..<40).map { "k\($0)" })
        XCTAssertEqual(o["k33"], 33)
        o["k5"] = "five"
        o["k0"] = nil
        for i in 12..<40 { o["k\(i)"] = nil }
        XCTAssertEqual(o.keys, (1..<12).map { "k\($0)" })
        XCTAssertEqual(o["k5"], "five")
        XCTAssertNil(o["k20"])
        XCTAssertFalse(o.contains("k0"))
        o["new"] = true
        XCTAssertEqual(o.keys.last, "new")
        XCTAssertEqual(o.count, 12)
        XCTAssertNotEqual(JSONObject([("a", 1), ("b", 2)]), JSONObject([("b", 2), ("a", 1)]), "order is part of equality")
        XCTAssertEqual(JSONObject([("a", 1), ("b", 2)]), ["a": 1, "b": 2])
        XCTAssertThrowsError(try JSONParser.parse("{" + (0..<30).map { "\"k\($0)\": 1" }.joined(separator: ",") + ", \"k7\": 2}"))
    }

    func testDeepNestingIsAnErrorNotACrash() {
        let deep = String(repeating: "[", count: 100_000)
        XCTAssertThrowsError(try JSONParser.parse(deep))
    }
}
