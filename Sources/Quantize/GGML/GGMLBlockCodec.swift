import Formats

/// One of ggml's 32-element block formats as a `QuantCodec` (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
/// IQ4_NL, ggml's MXFP4). A conforming type says how a run of weights gets its block parameters,
/// how one weight becomes a code, and where parameters and codes sit in the block's bytes; this
/// protocol's extension is the codec around them (encode, decode, fake-quant, the grid).
///
/// The reference encoder of each format (ggml's `quantize_row_*_ref`) is exactly
/// `parameters(clip: 1)` followed by `quantize` on every element, so round-to-nearest, GPTQ and
/// clipping search share one definition and GPTQ that changes nothing reproduces ggml's bytes.
///
/// Storage: a segment's `codes` section is the ggml blocks themselves, row after row — exactly the
/// bytes of a GGUF tensor of that type — and there is no separate scale section (each block
/// carries its own). A GGUF writer copies the section; the packed reader and a GGUF reader decode
/// it with the same `GGMLDequantize`. A row whose width is not a multiple of 32 ends in a partial
/// block: its parameters come from its real elements only and its unused codes are 0. Such a
/// segment stays readable in the packed file, but ggml cannot hold it, so a GGUF writer must
/// refuse it.
///
/// (A protocol with the codec in its extension rather than a generic struct over the format: each
/// conforming type's witnesses are then specialized, so the per-element calls inline.)
public protocol GGMLBlockCodec: QuantCodec, QuantGrid {
    init()
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
    /// ORs element `j`'s code into a block whose code bytes were zero (one element at a time, for
    /// the calibrated encoders).
    static func storeCode(_ code: UInt8, _ j: Int, _ block: UnsafeMutablePointer<UInt8>)
    /// Codes of w[0..<n] under `p` into `codes` — `quantize` element by element unless a format
    /// has a faster equivalent (MXFP4's nearest-value search runs candidate by candidate).
    static func quantizeBlock(_ w: UnsafePointer<Float>, _ n: Int, _ p: GridParameters, _ codes: UnsafeMutablePointer<UInt8>)
    /// The value a decoder gives `code` under `p` (what `quantize` returns with it).
    static func value(_ code: UInt8, _ p: GridParameters) -> Float
    /// Writes all code bytes of a block from its 32 codes (`codes[j]` for element j), for
    /// round-to-nearest, which has the whole block at hand.
    static func pack(_ codes: UnsafePointer<UInt8>, _ block: UnsafeMutablePointer<UInt8>)
}

extension GGMLBlockCodec {
    @inline(__always)
    public static func quantizeBlock(_ w: UnsafePointer<Float>, _ n: Int, _ p: GridParameters,
                                     _ codes: UnsafeMutablePointer<UInt8>) {
        for j in 0..<n { codes[j] = quantize(w[j], p).0 }
    }

    public static func parse(_ text: String) -> Self? { text == schemeName ? Self() : nil }
    public static var blockSize: Int { type.blockSize }

    public var ggmlType: GGMLType { Self.type }
    public var name: String { Self.schemeName }
    public var payloadBits: Int { Self.codeBits }
    public var codeElement: ElementType { .u8 }
    public func codeBytesPerRow(cols: Int) -> Int { (cols + Self.blockSize - 1) / Self.blockSize * Self.type.typeSize }
    public func scalesPerRow(cols: Int) -> Int { 0 }

    public func describeScales(rows: Int, cols: Int) -> String {
        let partial = cols % Self.blockSize == 0 ? "" : ", last block \(cols % Self.blockSize) cols (not storable in GGUF)"
        return "ggml \(Self.type.name) blocks [\(rows), \((cols + Self.blockSize - 1) / Self.blockSize)] of 32 cols, "
            + "\(Self.type.typeSize) bytes each, scales inside\(partial)"
    }

    public func encode(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float,
                       codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        let rb = codeBytesPerRow(cols: cols), ts = Self.type.typeSize, bs = Self.blockSize
        let c = codes.assumingMemoryBound(to: UInt8.self)
        let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: bs)
        defer { scratch.deallocate() }
        for r in rows {
            let row = w + r * cols
            var j0 = 0, block = c + r * rb
            while j0 < cols {
                let n = min(bs, cols - j0), x = row + j0
                let p = Self.parameters(x, n, clip: 1)
                Self.storeHeader(p, block)
                Self.quantizeBlock(x, n, p, scratch)
                for j in n..<bs { scratch[j] = 0 }
                Self.pack(scratch, block)
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
            GGMLDequantize.decode(Self.type, src, blocks: whole, into: dst)
            if tail > 0 {
                scratch.withUnsafeMutableBufferPointer { s in
                    GGMLDequantize.decode(Self.type, src + whole * Self.type.typeSize, blocks: 1, into: s.baseAddress!)
                    (dst + whole * bs).update(from: s.baseAddress!, count: tail)
                }
            }
        }
    }

    /// decode(encode(w)): each weight replaced by the value of its code, block by block.
    public func fakeQuant(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float) {
        let bs = Self.blockSize
        let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: bs)
        defer { scratch.deallocate() }
        for r in rows {
            let row = w + r * cols
            var j0 = 0
            while j0 < cols {
                let n = min(bs, cols - j0), x = row + j0
                let p = Self.parameters(x, n, clip: 1)
                Self.quantizeBlock(x, n, p, scratch)
                for j in 0..<n { x[j] = Self.value(scratch[j], p) }
                j0 += bs
            }
        }
    }

    public var grid: QuantGrid? { self }
    public func group(cols: Int) -> Int { Self.blockSize }
    public var isGrouped: Bool { true }
    public var codeBits: Int { Self.codeBits }

    @inline(__always)
    public func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float, rowScale: Float) -> GridParameters {
        Self.parameters(w, n, clip: clip)
    }

    @inline(__always)
    public func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) { Self.quantize(w, p) }

    @inline(__always)
    public func storeCode(_ code: UInt8, row: Int, col: Int, rowBytes: Int, codes: UnsafeMutableRawPointer) {
        let block = codes.assumingMemoryBound(to: UInt8.self) + row * rowBytes + (col / Self.blockSize) * Self.type.typeSize
        Self.storeCode(code, col % Self.blockSize, block)
    }

    @inline(__always)
    public func storeParameters(_ p: GridParameters, row: Int, group: Int, groupsPerRow: Int, rowBytes: Int,
                                codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?,
                                zeroPoints: UnsafeMutablePointer<UInt8>?) {
        Self.storeHeader(p, codes.assumingMemoryBound(to: UInt8.self) + row * rowBytes + group * Self.type.typeSize)
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
/// Done as a vectorizable max over the finite magnitudes, then a search for the first element of
/// that magnitude (non-finite weights, which ggml would pick, are refused before encoding).
@inline(__always)
func signedAbsMax(_ w: UnsafePointer<Float>, _ n: Int) -> (max: Float, amax: Float) {
    let amax = finiteAbsMax(w, n)
    guard amax > 0 else { return (0, 0) }
    var j = 0
    while abs(w[j]) != amax { j += 1 }
    return (w[j], amax)
}

/// 32 four-bit codes into 16 bytes: element j in the low nibble of byte j, j + 16 in the high one.
@inline(__always)
func packNibbles(_ codes: UnsafePointer<UInt8>, _ qs: UnsafeMutablePointer<UInt8>) {
    for j in 0..<16 { qs[j] = (codes[j] & 0x0F) | (codes[j + 16] & 0x0F) &<< 4 }
}

/// The fifth bits of 32 five-bit codes as the little-endian UInt32 `qh` (bit j for element j).
@inline(__always)
func packHighBits(_ codes: UnsafePointer<UInt8>, _ qh: UnsafeMutablePointer<UInt8>) {
    for k in 0..<4 {
        var b: UInt8 = 0
        for i in 0..<8 { b |= ((codes[8 * k + i] >> 4) & 1) &<< UInt8(i) }
        qh[k] = b
    }
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
