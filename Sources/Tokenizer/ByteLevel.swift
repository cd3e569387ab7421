/// GPT-2's byte-to-character table: byte-level BPE vocabularies spell every byte as a printable
/// character so that tokens are valid strings. Printable Latin-1 bytes stand for themselves;
/// the other 68 bytes (controls, space, DEL, NBSP, soft hyphen) are moved to U+0100 onwards in
/// byte order, which is why a space shows up as "Ġ" (U+0120) in vocab files.
enum ByteLevel {
    static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, c) in byteToScalar.enumerated() { map[c] = UInt8(b) }
        return map
    }()

    /// The vocabulary spelling of raw bytes.
    static func encode<C: Collection<UInt8>>(_ bytes: C) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(byteToScalar[Int(b)])!) }
        return String(s)
    }

    /// The raw bytes a vocabulary token spells, or nil if it has a character outside the table
    /// (such a token can never come out of byte-level pre-tokenization).
    static func decode(_ token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for u in token.unicodeScalars {
            guard let b = scalarToByte[u.value] else { return nil }
            out.append(b)
        }
        return out
    }
}
