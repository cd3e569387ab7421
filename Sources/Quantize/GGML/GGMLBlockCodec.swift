import Formats

/// One of ggml's 32-element block formats that nemo-convert encodes (Q8_0, Q4_0, Q4_1, Q5_0,
/// Q5_1, IQ4_NL, ggml's MXFP4): how a run of weights gets its block parameters, how one weight
/// becomes a code, and where parameters and codes sit in the block's bytes.
///
/// The reference encoder of each format (ggml's `quantize_row_*_ref`) is exactly
/// `parameters(clip: 1)` followed by `quantize` on every element, so round-to-nearest, GPTQ and
/// clipping search share one definition and GPTQ that changes nothing reproduces ggml's bytes.
public protocol GGMLBlockFormat: Sendable {
    /// The ggml type whose blocks this format writes.
    static var type: GGMLType { get }
    /// The scheme's spelling in recipes and on the command line.
    static var schemeName: String { get }
    /// Bits of one code (4, 5 or 8).
    static var codeBits: Int { get }
    /// The block parameters of w[0..<n] (n ≤ 32) with the range shrunk by `clip`; clip = 1 is
    /// ggml's reference rule bit for bit.
    static func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float) -> GridParameters
    /// (code, the value a decoder gives it), for one weight under `p`.
    static func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float)
    /// Writes the block's parameter fields (its FP16 scale, minimum, E8M0 exponent).
    static func storeHeader(_ p: GridParameters, _ block: UnsafeMutablePointer<UInt8>)
    /// ORs element `j`'s code into a block whose code bytes were zero.
    static func storeCode(_ code: UInt8, _ j: Int, _ block: UnsafeMutablePointer<UInt8>)
}

/// A ggml block format as a `QuantCodec`: a segment's `codes` section is the ggml blocks
/// themselves, row after row — exactly the bytes of a GGUF tensor of that type — and there is no
/// separate scale section (each block carries its own). A GGUF writer copies the section; the
/// packed reader and a GGUF reader decode it with the same `GGMLDequantize`.
///
/// A row whose width is not a multiple of 32 ends in a partial block: its parameters come from its
/// real elements only and its unused code bits are 0. Such a segment stays readable in the packed
/// file, but ggml cannot hold it, so a GGUF writer must refuse it.
public struct GGMLBlockCodec<Format: GGMLBlockFormat>: QuantCodec, QuantGrid {
    public static var blockSize: Int { Format.type.blockSize }
    public init() {}
    public static func parse(_ text: String) -> Self? { text == Format.schemeName ? Self() : nil }

    public var type: GGMLType { Format.type }
    public var name: String { Format.schemeName }
    public var payloadBits: Int { Format.codeBits }
    public var codeElement: ElementType { .u8 }
    public func codeBytesPerRow(cols: Int) -> Int { (cols + Self.blockSize - 1) / Self.blockSize * Format.type.typeSize }
    public func scalesPerRow(cols: Int) -> Int { 0 }

    public func describeScales(rows: Int, cols: Int) -> String {
        let partial = cols % Self.blockSize == 0 ? "" : ", last block \(cols % Self.blockSize) cols (not storable in GGUF)"
        return "ggml \(Format.type.name) blocks [\(rows), \((cols + Self.blockSize - 1) / Self.blockSize)] of 32 cols, "
            + "\(Format.type.typeSize) bytes each, scales inside\(partial)"
    }

    public func encode(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float,
                       codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        let rb = codeBytesPerRow(cols: cols), ts = Format.type.typeSize, bs = Self.blockSize
        let c = codes.assumingMemoryBound(to: UInt8.self)
        for r in rows {
            let row = w + r * cols, out = c + r * rb
            out.initialize(repeating: 0, count: rb)
            var j0 = 0, block = out
            while j0 < cols {
                let n = min(bs, cols - j0)
                let p = Format.parameters(row + j0, n, clip: 1)
                Format.storeHeader(p, block)
                for j in 0..<n { Format.storeCode(Format.quantize(row[j0 + j], p).0, j, block) }
                j0 += bs; block += ts
            }
        }
    }

    public func decode(codes: UnsafeRawPointer, scales: UnsafeRawPointer?, zeroPoints: UnsafePointer<UInt8>?, rowScale: Float,
                       cols: Int, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let rb = codeBytesPerRow(cols: cols), bs = Self.blockSize
        let whole = cols / bs, tail = cols - whole * bs
        var scratch = [Float](repeating: 0, count: bs)
        for r in rows {
            let src = codes + r * rb, dst = out + r * cols
            GGMLDequantize.decode(Format.type, src, blocks: whole, into: dst)
            if tail > 0 {
                scratch.withUnsafeMutableBufferPointer { s in
                    GGMLDequantize.decode(Format.type, src + whole * Format.type.typeSize, blocks: 1, into: s.baseAddress!)
                    (dst + whole * bs).update(from: s.baseAddress!, count: tail)
                }
            }
        }
    }

    /// decode(encode(w)): each weight replaced by the value of its code, block by block.
    public func fakeQuant(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float) {
        let bs = Self.blockSize
        for r in rows {
            let row = w + r * cols
            var j0 = 0
            while j0 < cols {
                let n = min(bs, cols - j0)
                let p = Format.parameters(row + j0, n, clip: 1)
                for j in j0..<(j0 + n) { row[j] = Format.quantize(row[j], p).1 }
                j0 += bs
            }
        }
    }

    public var grid: QuantGrid? { self }
    public func group(cols: Int) -> Int { Self.blockSize }
    public var isGrouped: Bool { true }
    public var codeBits: Int { Format.codeBits }

    @inline(__always)
    public func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float, rowScale: Float) -> GridParameters {
        Format.parameters(w, n, clip: clip)
    }

    @inline(__always)
    public func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) { Format.quantize(w, p) }

    @inline(__always)
    public func storeCode(_ code: UInt8, row: Int, col: Int, rowBytes: Int, codes: UnsafeMutableRawPointer) {
        let block = codes.assumingMemoryBound(to: UInt8.self) + row * rowBytes + (col / Self.blockSize) * Format.type.typeSize
        Format.storeCode(code, col % Self.blockSize, block)
    }

    @inline(__always)
    public func storeParameters(_ p: GridParameters, row: Int, group: Int, groupsPerRow: Int, rowBytes: Int,
                                codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?,
                                zeroPoints: UnsafeMutablePointer<UInt8>?) {
        Format.storeHeader(p, codes.assumingMemoryBound(to: UInt8.self) + row * rowBytes + group * Format.type.typeSize)
    }

    /// Unused: parameters live in the blocks (`storeParameters` above).
    public func store(_ p: GridParameters, at index: Int, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {}
}

// MARK: - Shared arithmetic of the reference encoders

/// `(int)(v)` for the reference encoders' `(int8_t)(x + 8.5f)`-style conversions — truncation
/// toward zero — on v clamped to [0, hi] first, so it never traps (NaN gives 0) and stays
/// vectorizable: the truncated value plus 2^23 is exact, and its low mantissa bits are the integer.
@inline(__always)
func truncatedCode(_ v: Float, _ hi: Float) -> Int32 {
    let c = v > 0 ? (v < hi ? v : hi) : 0
    return Int32(bitPattern: (c.rounded(.towardZero) + 8_388_608).bitPattern) &- 0x4B00_0000
}

/// The signed value with the largest magnitude (the first one on ties) and that magnitude, as
/// ggml's `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }` finds them.
@inline(__always)
func signedAbsMax(_ w: UnsafePointer<Float>, _ n: Int) -> (max: Float, amax: Float) {
    var amax: Float = 0, mx: Float = 0
    for j in 0..<n {
        let a = abs(w[j])
        if amax < a { amax = a; mx = w[j] }
    }
    return (mx, amax)
}

/// Element j of a 32-block's 4-bit codes: byte j mod 16, low nibble for j < 16, high for j ≥ 16.
@inline(__always)
func storeNibble(_ code: UInt8, _ j: Int, _ qs: UnsafeMutablePointer<UInt8>) {
    qs[j & 15] |= (code & 0x0F) &<< UInt8(truncatingIfNeeded: (j >> 4) << 2)
}

/// The fifth bit of element j's code, in the little-endian 32-bit `qh` of a Q5 block.
@inline(__always)
func storeHighBit(_ code: UInt8, _ j: Int, _ qh: UnsafeMutablePointer<UInt8>) {
    qh[j >> 3] |= ((code >> 4) & 1) &<< UInt8(truncatingIfNeeded: j & 7)
}
