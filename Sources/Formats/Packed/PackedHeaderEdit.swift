/// Rewrites a packed file's header in memory, with a fresh header checksum and preamble, so tests
/// and mutation fuzzers can produce files that pass the integrity checks yet say something false
/// (the header checksum guards against bit rot, not against a crafted file).
public enum PackedHeaderEdit {
    /// The header of a packed file's bytes as JSON, and where it starts.
    public static func header(of bytes: [UInt8]) throws -> (header: JSONObject, offset: Int) {
        guard bytes.count >= PackedWriter.preambleSize + 8 else { throw FormatError.invalidHeader(file: "(bytes)", message: "too short") }
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        let offset = u64(16), length = u64(24)
        guard offset >= PackedWriter.preambleSize, length >= 0, offset + length + 8 == bytes.count,
              let o = try JSONParser.parse(Array(bytes[offset..<(offset + length)])).objectValue else {
            throw FormatError.invalidHeader(file: "(bytes)", message: "no readable header")
        }
        return (o, offset)
    }

    /// `bytes` with the header replaced by `edit`'s result, the preamble pointing at it with its
    /// checksum, and `preamble` applied last (to set flags or reserved bytes).
    public static func rewrite(_ bytes: [UInt8], preamble: (inout [UInt8]) -> Void = { _ in },
                               _ edit: (inout JSONObject) throws -> Void) throws -> [UInt8] {
        var (h, offset) = try header(of: bytes)
        try edit(&h)
        let text = JSONWriter.bytes(.object(h))
        var out = Array(bytes[0..<offset]) + text + PackedWriter.magic
        func put(_ v: UInt64, _ at: Int) { for i in 0..<8 { out[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        put(UInt64(text.count), 24)
        put(text.withUnsafeBytes { XXH64.hash($0) }, 32)
        preamble(&out)
        return out
    }
}
