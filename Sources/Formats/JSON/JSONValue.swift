/// A parsed JSON document.
///
/// Our own type rather than Foundation's `JSONSerialization` because config.json files written by
/// Python contain bare `Infinity` / `NaN` literals (not JSON), and because parse errors must say
/// where in which file they happened.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var objectValue: JSONObject? { if case .object(let o) = self { return o }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }

    /// A number, also accepting transformers' `{"__float__": "Infinity"}` encoding of non-finite floats.
    public var doubleValue: Double? {
        switch self {
        case .number(let d): return d
        case .object(let o):
            guard o.count == 1, let s = o["__float__"]?.stringValue else { return nil }
            switch s {
            case "Infinity", "inf", "+Infinity": return .infinity
            case "-Infinity", "-inf": return -.infinity
            case "NaN", "nan": return .nan
            default: return Double(s)
            }
        default: return nil
        }
    }

    /// An integer: a number with no fractional part that fits in Int.
    public var intValue: Int? {
        guard case .number(let d) = self, d.isFinite, d == d.rounded(),
              abs(d) < 9.007_199_254_740_992e15 else { return nil }
        return Int(d)
    }
}

/// A JSON object that keeps its keys in document order (safetensors headers and recipes are
/// reported in the order their authors wrote them).
///
/// Small objects — most of them: a safetensors entry has three keys — are searched linearly;
/// a hash index is built only past `indexThreshold` keys. Hashing every key of every tiny object
/// was a quarter of the time to open a 6,000-tensor checkpoint.
public struct JSONObject: Equatable, Sendable, Sequence {
    private var pairs: [(key: String, value: JSONValue)] = []
    private var index: [String: Int]?
    static let indexThreshold = 12

    public init() {}
    public init(_ pairs: [(String, JSONValue)]) { for (k, v) in pairs { self[k] = v } }

    public var keys: [String] { pairs.map(\.key) }
    public var count: Int { pairs.count }

    private func position(_ key: String) -> Int? {
        if let index { return index[key] }
        return pairs.firstIndex { $0.key == key }
    }

    public subscript(key: String) -> JSONValue? {
        get { position(key).map { pairs[$0].value } }
        set {
            if let i = position(key) {
                if let v = newValue {
                    pairs[i].value = v
                } else {
                    pairs.remove(at: i)
                    if index != nil { rebuildIndex() }
                }
            } else if let v = newValue {
                pairs.append((key, v))
                if index != nil {
                    index![key] = pairs.count - 1
                } else if pairs.count > Self.indexThreshold {
                    rebuildIndex()
                }
            }
        }
    }

    private mutating func rebuildIndex() {
        guard pairs.count > Self.indexThreshold else { index = nil; return }
        var d = [String: Int](minimumCapacity: pairs.count)
        for (i, p) in pairs.enumerated() { d[p.key] = i }
        index = d
    }

    public func contains(_ key: String) -> Bool { position(key) != nil }

    public func makeIterator() -> AnyIterator<(key: String, value: JSONValue)> {
        var i = 0
        let pairs = self.pairs
        return AnyIterator {
            guard i < pairs.count else { return nil }
            defer { i += 1 }
            return pairs[i]
        }
    }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        a.pairs.count == b.pairs.count && zip(a.pairs, b.pairs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

// Literals let report code read like the JSON it produces: `["parameters": .int(n), "pattern": "ME"]`.
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }

    /// Counts and sizes; exact up to 2^53, far beyond any parameter or byte count we report.
    public static func int(_ v: Int) -> JSONValue { .number(Double(v)) }
    /// Through the Float's shortest decimal form, so 1e-5 prints as `1e-05`, not `9.999999747378752e-06`.
    public static func float(_ v: Float) -> JSONValue { .number(v.isFinite ? Double(v.description) ?? Double(v) : Double(v)) }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self.init(elements) }
}

/// Error messages quote offending values as the JSON their author wrote, not as Swift enum dumps.
extension JSONValue: CustomStringConvertible {
    public var description: String { JSONWriter.string(self, options: .init(nonFinite: .pythonLiterals)) }
}
