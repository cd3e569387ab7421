/// A strict-by-default JSON parser over UTF-8 bytes.
///
/// Accepts, beyond RFC 8259, only the literals Python's `json.dumps` writes for non-finite floats
/// (`Infinity`, `-Infinity`, `NaN`), since config.json files in the wild contain them.
/// Duplicate keys are an error (safetensors requires it, and a config with two values for one
/// field has no meaning). Nesting is bounded so hostile input cannot overflow the stack.
public struct JSONParseError: Error, Equatable, CustomStringConvertible, Sendable {
    public var message: String
    public var offset: Int
    /// Keys (and `[i]` array indices) from the root down to the value that failed, so a caller can
    /// say which safetensors entry or config field is broken rather than only a byte offset.
    /// Filled in while the error unwinds, so parsing valid input pays nothing for it.
    public var path: [String] = []
    /// The repeated key, when the error is a duplicate key; `path` names the object holding it.
    public var duplicateKey: String? = nil

    public var description: String {
        path.isEmpty ? "\(message) at byte \(offset)" : "\(message) at byte \(offset) (in \(path.joined(separator: ".")))"
    }
}

public enum JSONParser {
    public static let maxDepth = 256

    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        var p = Cursor(base: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        if p.i != p.count { throw p.fail("unexpected trailing characters") }
        return v
    }

    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        do {
            return try bytes.withUnsafeBytes { raw in try parse(raw) }
        } catch let e as JSONParseError {
            throw e
        } catch {
            fatalError("unreachable")
        }
    }

    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }
}

extension JSONParseError {
    fileprivate func within(_ component: String) -> JSONParseError {
        var e = self
        e.path.insert(component, at: 0)
        return e
    }
}

private struct Cursor {
    let base: UnsafePointer<UInt8>?
    let count: Int
    var i = 0

    func fail(_ m: String) -> JSONParseError { JSONParseError(message: m, offset: i) }

    @inline(__always) func peek() -> UInt8? { i < count ? base![i] : nil }

    mutating func skipSpace() {
        while i < count {
            let c = base![i]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { break }
        }
    }

    mutating func expectLiteral(_ lit: StaticString) -> Bool {
        let n = lit.utf8CodeUnitCount
        guard count - i >= n else { return false }
        let l = lit.utf8Start
        for k in 0..<n where base![i + k] != l[k] { return false }
        i += n
        return true
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth < JSONParser.maxDepth else { throw fail("nesting deeper than \(JSONParser.maxDepth)") }
        guard let c = peek() else { throw fail("unexpected end of input") }
        switch c {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): if expectLiteral("true") { return .bool(true) }
        case UInt8(ascii: "f"): if expectLiteral("false") { return .bool(false) }
        case UInt8(ascii: "n"): if expectLiteral("null") { return .null }
        case UInt8(ascii: "N"): if expectLiteral("NaN") { return .number(.nan) }
        case UInt8(ascii: "I"): if expectLiteral("Infinity") { return .number(.infinity) }
        case UInt8(ascii: "-"):
            if count - i > 1, base![i + 1] == UInt8(ascii: "I") {
                i += 1
                if expectLiteral("Infinity") { return .number(-.infinity) }
                i -= 1
                throw fail("invalid literal")
            }
            return .number(try number())
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: break
        }
        throw fail("unexpected character '\(printable(c))'")
    }

    func printable(_ c: UInt8) -> String {
        (0x20..<0x7F).contains(c) ? String(UnicodeScalar(c)) : "\\x" + String(c, radix: 16)
    }

    mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        i += 1
        var obj = JSONObject()
        skipSpace()
        if peek() == UInt8(ascii: "}") { i += 1; return .object(obj) }
        while true {
            skipSpace()
            guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyStart = i
            let key = try string()
            if obj.contains(key) {
                throw JSONParseError(message: "duplicate key \"\(key)\"", offset: keyStart, duplicateKey: key)
            }
            skipSpace()
            guard peek() == UInt8(ascii: ":") else { throw fail("expected ':'") }
            i += 1
            skipSpace()
            do { obj[key] = try value(depth: depth + 1) } catch { throw error.within(key) }
            skipSpace()
            guard let c = peek() else { throw fail("unterminated object") }
            i += 1
            if c == UInt8(ascii: "}") { return .object(obj) }
            if c != UInt8(ascii: ",") { i -= 1; throw fail("expected ',' or '}'") }
        }
    }

    mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        i += 1
        var arr: [JSONValue] = []
        skipSpace()
        if peek() == UInt8(ascii: "]") { i += 1; return .array(arr) }
        while true {
            skipSpace()
            do { arr.append(try value(depth: depth + 1)) } catch { throw error.within("[\(arr.count)]") }
            skipSpace()
            guard let c = peek() else { throw fail("unterminated array") }
            i += 1
            if c == UInt8(ascii: "]") { return .array(arr) }
            if c != UInt8(ascii: ",") { i -= 1; throw fail("expected ',' or ']'") }
        }
    }

    mutating func number() throws(JSONParseError) -> Double {
        let start = i
        if peek() == UInt8(ascii: "-") { i += 1 }
        guard let d = peek(), d >= 0x30, d <= 0x39 else { throw fail("invalid number") }
        if d == 0x30 { i += 1 } else { while let c = peek(), c >= 0x30, c <= 0x39 { i += 1 } }
        var isFloat = false
        if peek() == UInt8(ascii: ".") {
            isFloat = true
            i += 1
            guard let c = peek(), c >= 0x30, c <= 0x39 else { throw fail("invalid number") }
            while let c = peek(), c >= 0x30, c <= 0x39 { i += 1 }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            isFloat = true
            i += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { i += 1 }
            guard let c = peek(), c >= 0x30, c <= 0x39 else { throw fail("invalid number") }
            while let c = peek(), c >= 0x30, c <= 0x39 { i += 1 }
        }
        // Headers are mostly small integers (shapes, offsets); building a String for each one would
        // dominate opening a 6,000-tensor checkpoint. 15 digits stay exact in a Double.
        if !isFloat {
            let neg = base![start] == UInt8(ascii: "-")
            let digits = i - start - (neg ? 1 : 0)
            if digits <= 15 {
                var v = 0
                for k in (start + (neg ? 1 : 0))..<i { v = v &* 10 &+ Int(base![k] &- 0x30) }
                return neg ? -Double(v) : Double(v)
            }
        }
        let text = String(decoding: UnsafeBufferPointer(start: base! + start, count: i - start), as: UTF8.self)
        guard let v = Double(text) else { throw JSONParseError(message: "invalid number", offset: start) }
        return v
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard count - i >= 4 else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = base![i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    mutating func string() throws(JSONParseError) -> String {
        i += 1
        let start = i
        // Fast path: no escapes.
        while i < count {
            let c = base![i]
            if c == UInt8(ascii: "\"") {
                let buf = UnsafeBufferPointer(start: base! + start, count: i - start)
                i += 1
                return try validated(buf, at: start)
            }
            if c == UInt8(ascii: "\\") || c < 0x20 { break }
            i += 1
        }
        var out = Array(UnsafeBufferPointer(start: base! + start, count: i - start))
        while true {
            guard i < count else { throw fail("unterminated string") }
            let c = base![i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            i += 1
            guard i < count else { throw fail("unterminated string") }
            let e = base![i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var cp = try hex4()
                if (0xD800..<0xDC00).contains(cp) {
                    guard count - i >= 6, base![i] == UInt8(ascii: "\\"), base![i + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate")
                    }
                    i += 2
                    let lo = try hex4()
                    guard (0xDC00..<0xE000).contains(lo) else { throw fail("unpaired surrogate") }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..<0xE000).contains(cp) {
                    throw fail("unpaired surrogate")
                }
                guard let s = UnicodeScalar(cp) else { throw fail("invalid code point") }
                out.append(contentsOf: Array(String(Character(s)).utf8))
            default:
                i -= 1
                throw fail("invalid escape")
            }
        }
        return try out.withUnsafeBufferPointer { b throws(JSONParseError) in try validated(b, at: start) }
    }

    func validated(_ b: UnsafeBufferPointer<UInt8>, at offset: Int) throws(JSONParseError) -> String {
        guard let s = String(validating: b, as: UTF8.self) else {
            throw JSONParseError(message: "invalid UTF-8 in string", offset: offset)
        }
        return s
    }
}
