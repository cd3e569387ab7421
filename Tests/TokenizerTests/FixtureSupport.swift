import Foundation
import Formats
@testable import Tokenizer
import TestSupport

let fixtureTokenizerPath = Fixtures.root + "/nemotron-h-tiny-dense/tokenizer.json"

/// Loaded once: every test shares it, as threads of a real run would.
let fixtureTokenizer: Tokenizer = {
    do {
        return try Tokenizer(contentsOf: fixtureTokenizerPath)
    } catch {
        fatalError("\(error)")
    }
}()

func fixtureBytes(_ relative: String) -> [UInt8] {
    guard let d = FileManager.default.contents(atPath: Fixtures.root + "/" + relative) else {
        fatalError("missing fixture \(relative)")
    }
    return [UInt8](d)
}

func fixtureText(_ relative: String) -> String {
    String(decoding: fixtureBytes(relative), as: UTF8.self)
}

func fixtureJSON(_ relative: String) -> JSONValue {
    do {
        return try JSONParser.parse(fixtureBytes(relative))
    } catch {
        fatalError("\(error)")
    }
}

/// The fixture tokenizer.json as a mutable JSON object, for crafting variants.
func fixtureTokenizerObject() -> JSONObject {
    fixtureJSON("nemotron-h-tiny-dense/tokenizer.json").objectValue!
}

/// Serialises a JSON value (enough for crafted tokenizer.json variants).
func jsonText(_ v: JSONValue) -> String {
    switch v {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .number(let d):
        return d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
    case .string(let s):
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    case .array(let a): return "[" + a.map(jsonText).joined(separator: ",") + "]"
    case .object(let o): return "{" + o.map { jsonText(.string($0.key)) + ":" + jsonText($0.value) }.joined(separator: ",") + "}"
    }
}

func tokenizer(from object: JSONObject, config: String? = nil) throws -> Tokenizer {
    try Tokenizer(json: Array(jsonText(.object(object)).utf8), tokenizerConfig: config.map { Array($0.utf8) })
}

func parseJSON(_ text: String) -> JSONValue {
    do {
        return try JSONParser.parse(Array(text.utf8))
    } catch {
        fatalError("\(error): \(text)")
    }
}
