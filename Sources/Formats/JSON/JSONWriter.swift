/// Serializes `JSONValue` to text: safetensors headers, index files and every subcommand's `--json`.
///
/// Output is deterministic — objects keep their insertion order (or sorted keys on request) and
/// numbers print the same way every run — so outputs can be diffed and hashed. JSON has no
/// spelling for infinities and NaN; by default they are written as `null`, because `--json` output
/// must stay parseable by every consumer (a caller who must not lose them can check
/// `containsNonFinite` first). `.pythonLiterals` writes `Infinity`/`-Infinity`/`NaN` as Python's
/// json module does, for files only Python and our parser read back (a rewritten config.json).
public enum JSONWriter {
    public struct Options: Sendable {
        /// Two-space indentation and one member per line (arrays of scalars stay on one line);
        /// compact when false.
        public var pretty: Bool
        /// Sort object keys by their UTF-8 bytes instead of keeping insertion order.
        public var sortKeys: Bool
        public var nonFinite: NonFinite

        public init(pretty: Bool = false, sortKeys: Bool = false, nonFinite: NonFinite = .null) {
            self.pretty = pretty
            self.sortKeys = sortKeys
            self.nonFinite = nonFinite
        }
    }

    public enum NonFinite: Sendable { case null, pythonLiterals }

    public static func string(_ value: JSONValue, options: Options = Options()) -> String {
        String(decoding: bytes(value, options: options), as: UTF8.self)
    }

    public static func string(_ value: JSONValue, pretty: Bool, sortKeys: Bool = false) -> String {
        string(value, options: Options(pretty: pretty, sortKeys: sortKeys))
    }

    public static func bytes(_ value: JSONValue, options: Options = Options()) -> [UInt8] {
        var out: [UInt8] = []
        write(value, into: &out, options: options, indent: 0)
        return out
    }

    /// True if any number in the value is infinite or NaN (and would be written as `null`).
    public static func containsNonFinite(_ value: JSONValue) -> Bool {
        switch value {
        case .number(let d): return !d.isFinite
        case .array(let a): return a.contains { containsNonFinite($0) }
        case .object(let o): return o.contains { containsNonFinite($0.value) }
        default: return false
        }
    }

    static func write(_ v: JSONValue, into out: inout [UInt8], options: Options, indent: Int) {
        switch v {
        case .null: out += Array("null".utf8)
        case .bool(let b): out += Array((b ? "true" : "false").utf8)
        case .number(let d): writeNumber(d, into: &out, nonFinite: options.nonFinite)
        case .string(let s): writeString(s, into: &out)
        case .array(let a):
            if a.isEmpty { out += [0x5B, 0x5D]; return }
            // Shapes and offsets read best on one line, even in pretty output.
            if options.pretty && a.allSatisfy({ $0.arrayValue == nil && $0.objectValue == nil }) {
                out.append(0x5B)
                for (i, e) in a.enumerated() {
                    if i > 0 { out += [0x2C, 0x20] }
                    write(e, into: &out, options: options, indent: indent)
                }
                out.append(0x5D)
                return
            }
            out.append(0x5B)
            for (i, e) in a.enumerated() {
                if i > 0 { out.append(0x2C) }
                newline(&out, options, indent + 1)
                write(e, into: &out, options: options, indent: indent + 1)
            }
            newline(&out, options, indent)
            out.append(0x5D)
        case .object(let o):
            if o.count == 0 { out += [0x7B, 0x7D]; return }
            out.append(0x7B)
            var members = Array(o)
            if options.sortKeys { members.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) } }
            for (i, m) in members.enumerated() {
                if i > 0 { out.append(0x2C) }
                newline(&out, options, indent + 1)
                writeString(m.key, into: &out)
                out.append(0x3A)
                if options.pretty { out.append(0x20) }
                write(m.value, into: &out, options: options, indent: indent + 1)
            }
            newline(&out, options, indent)
            out.append(0x7D)
        }
    }

    private static func newline(_ out: inout [UInt8], _ options: Options, _ indent: Int) {
        guard options.pretty else { return }
        out.append(0x0A)
        out += repeatElement(0x20, count: 2 * indent)
    }

    /// Integers (the common case: sizes, counts, offsets) print without a fraction; other values
    /// use Swift's shortest round-tripping form, which is valid JSON (`1e-05`, `0.1`, `1e+300`).
    static func writeNumber(_ d: Double, into out: inout [UInt8], nonFinite: NonFinite) {
        guard d.isFinite else {
            switch nonFinite {
            case .null: out += Array("null".utf8)
            case .pythonLiterals: out += Array((d.isNaN ? "NaN" : d < 0 ? "-Infinity" : "Infinity").utf8)
            }
            return
        }
        if d == d.rounded(), abs(d) < 1e18 {
            out += Array(String(Int(d)).utf8)
        } else {
            out += Array(d.description.utf8)
        }
    }

    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(0x22)
        for c in s.utf8 {
            switch c {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x0A: out += [0x5C, 0x6E]
            case 0x0D: out += [0x5C, 0x72]
            case 0x09: out += [0x5C, 0x74]
            case 0x08: out += [0x5C, 0x62]
            case 0x0C: out += [0x5C, 0x66]
            case 0..<0x20, 0x7F:
                let hex = Array("0123456789abcdef".utf8)
                out += [0x5C, 0x75, 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 0xF)]]
            default: out.append(c)
            }
        }
        out.append(0x22)
    }
}
