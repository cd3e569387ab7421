/// `mxfp4`: OCP Microscaling MXFP4 (MX v1.0): E2M1 elements (`E2M1`) in blocks of 32 consecutive
/// input columns, each block with one shared E8M0 scale X, a power of two.
///
/// X = 2^(floor(log2(amax)) − 2), amax the block's largest |w|: the spec's rule, 2 being E2M1's
/// largest exponent, so amax / X lies in [4, 8) and values above 6·X saturate to ±6·X. Stored as
/// the E8M0 byte floor(log2(amax)) − 2 + 127, clamped to 0 (2^-127) for tiny or all-zero blocks;
/// 255 (NaN) is never written. Elements are E2M1(w / X), rounded to nearest-even; they decode to
/// value(code) · X. Codes pack two per byte, low nibble = even column; a row whose width is not a
/// multiple of 32 ends in a shorter block (its scale from its own elements, what zero padding to
/// 32 would give). This is the block llama.cpp's GGUF MXFP4 stores (one E8M0 byte, then 16 bytes
/// of codes); here the scales are a section of their own, [rows, ceil(cols / 32)].
///
/// (NVIDIA ModelOpt's MXFP4 chooses X = 2^ceil(log2(amax / 6)) instead, which never clips but
/// wastes up to half the grid; its codes decode the same way.)
public struct MXFP4Codec: QuantCodec, QuantGrid {
    public static let blockSize = 32
    public init() {}
    public static func parse(_ text: String) -> Self? { text == "mxfp4" ? Self() : nil }

    public var name: String { "mxfp4" }
    public var payloadBits: Int { 4 }
    public var codeElement: ElementType { .e2m1x2 }
    public func codeBytesPerRow(cols: Int) -> Int { (cols + 1) / 2 }
    public func scalesPerRow(cols: Int) -> Int { (cols + Self.blockSize - 1) / Self.blockSize }
    public var scaleElement: ElementType { .e8m0 }

    public func describeScales(rows: Int, cols: Int) -> String {
        let partial = cols % Self.blockSize == 0 ? "" : ", last block \(cols % Self.blockSize) cols"
        return "E8M0 scales [\(rows), \(scalesPerRow(cols: cols))] per block of 32 cols\(partial)"
    }

    /// The E8M0 byte of a block whose largest magnitude is `absMax`: the biased exponent of
    /// absMax less 2, read from the Float's bits (exact; subnormal absMax gives 0).
    @inlinable
    public static func scaleByte(absMax: Float) -> UInt8 {
        let biased = Int((absMax.bitPattern >> 23) & 0xFF)
        return UInt8(clamping: max(0, min(254, biased - 2)))
    }

    public func encode(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float,
                       codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        let g = scalesPerRow(cols: cols), cb = codeBytesPerRow(cols: cols)
        let c = codes.assumingMemoryBound(to: UInt8.self), s = scales!.assumingMemoryBound(to: UInt8.self)
        let nibbles = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, cols))
        let divisors = UnsafeMutablePointer<Float>.allocate(capacity: max(1, g))
        defer { nibbles.deallocate(); divisors.deallocate() }
        for r in rows {
            let row = w + r * cols
            for b in 0..<g {
                let j0 = b * Self.blockSize, n = min(Self.blockSize, cols - j0)
                let byte = Self.scaleByte(absMax: finiteAbsMax(row + j0, n))
                s[r * g + b] = byte
                divisors[b] = E2M1.e8m0Value(byte)
            }
            E2M1.encodeRow(row, cols: cols, group: Self.blockSize, divisors: divisors, nibbles: nibbles, codes: c + r * cb)
        }
    }

    public func decode(codes: UnsafeRawPointer, scales: UnsafeRawPointer?, zeroPoints: UnsafePointer<UInt8>?, rowScale: Float,
                       cols: Int, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let g = scalesPerRow(cols: cols), cb = codeBytesPerRow(cols: cols)
        let c = codes.assumingMemoryBound(to: UInt8.self), s = scales!.assumingMemoryBound(to: UInt8.self)
        let nibbles = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, cols))
        let multipliers = UnsafeMutablePointer<Float>.allocate(capacity: max(1, g))
        defer { nibbles.deallocate(); multipliers.deallocate() }
        for r in rows {
            for b in 0..<g { multipliers[b] = E2M1.e8m0Value(s[r * g + b]) }
            E2M1.decodeRow(c + r * cb, cols: cols, group: Self.blockSize, multipliers: multipliers, nibbles: nibbles,
                           into: out + r * cols)
        }
    }

    public func fakeQuant(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float) {
        fakeQuantByRoundTrip(w, cols: cols, rows: rows, rowScale: rowScale)
    }

    public var grid: QuantGrid? { self }
    public func group(cols: Int) -> Int { Self.blockSize }
    public var isGrouped: Bool { true }
    public var codeBits: Int { 4 }

    @inline(__always)
    public func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float, rowScale: Float) -> GridParameters {
        let byte = Self.scaleByte(absMax: finiteAbsMax(w, n) * clip)
        return GridParameters(scale: E2M1.e8m0Value(byte), stored: byte)
    }

    @inline(__always)
    public func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) {
        let c = E2M1.encode(w / p.scale)
        return (c, E2M1.decode(c) * p.scale)
    }

    public func store(_ p: GridParameters, at index: Int, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        scales?.assumingMemoryBound(to: UInt8.self)[index] = p.stored
    }
}
