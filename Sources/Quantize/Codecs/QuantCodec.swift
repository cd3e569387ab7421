import Formats

/// One number format for a 2-D weight [rows = output channels, cols = input dim]: what it stores
/// (its sections, with element types and counts), how it encodes and decodes a range of rows, the
/// pre-pass it needs, and the grid that GPTQ, clipping search and AWQ quantize onto.
///
/// Everything that stores, reads, checks or sizes weights asks the codec instead of switching on
/// the scheme, so a new format is one conforming type in one file plus one line in
/// `QuantScheme.registry`. The value recipes and files carry is `QuantScheme`, which wraps a codec.
///
/// Buffers follow one convention for every codec: pointers address row 0 of the whole matrix and
/// `rows` picks the rows to work on, so disjoint row ranges of one tensor can go to different
/// threads. Row r's codes start at `r · codeBytesPerRow`, its scales at
/// `r · scalesPerRow · scaleElement.byteSize`, its zero points at `r · scalesPerRow`.
/// A call handles a whole range (a chunk of rows): codecs dispatch once per call, never per element.
public protocol QuantCodec: Sendable {
    /// Stable spelling (command lines, recipes, file headers), e.g. `int4-g128-sym`.
    var name: String { get }
    /// Bits of one stored element code.
    var payloadBits: Int { get }
    /// Element type of the `codes` section.
    var codeElement: ElementType { get }
    /// Bytes of codes of one row of `cols` elements (a packed 4-bit row of odd width ends in a
    /// half-used byte).
    func codeBytesPerRow(cols: Int) -> Int
    /// Scales each row stores in the `scales` section (its groups); 0 when the scale is per block
    /// of rows (`rowBlockScale` stored in `scales`) or there is none.
    func scalesPerRow(cols: Int) -> Int
    /// Element type of the `scales` section.
    var scaleElement: ElementType { get }
    /// One UInt8 zero point next to every per-row scale (`zero_points` section).
    var hasZeroPoints: Bool { get }
    /// A Float32 scale per block of rows (a tensor, an expert, an SSM head), measured from the
    /// block's absmax in a pre-pass over the rows before any row is encoded; nil for none.
    var rowBlockScale: RowBlockScale? { get }

    /// Encodes rows `rows` of `w`. `rowScale` is the rows' block scale (`rowBlockScale`), unused
    /// by codecs without one. Per-row scales and zero points are written, block scales are not.
    func encode(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float,
                codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?)
    /// Decodes rows `rows` into `out` (row 0 of the whole matrix).
    func decode(codes: UnsafeRawPointer, scales: UnsafeRawPointer?, zeroPoints: UnsafePointer<UInt8>?, rowScale: Float,
                cols: Int, rows: Range<Int>, into out: UnsafeMutablePointer<Float>)
    /// decode(encode(w)) in place, bit for bit.
    func fakeQuant(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float)

    /// The grid calibrated encoders quantize onto one element at a time; nil for formats that
    /// are not quantized (bf16, f16, f32).
    var grid: QuantGrid? { get }
    /// The source dtype whose bytes are this format's codes, which the converter copies unchanged.
    var verbatimDType: DType? { get }
    /// The dtype of codes whose value is the code times one Float32 scale — per row
    /// (`scalesPerRow` 1) or per block of rows (`rowBlockScale` stored in `scales`) — when this
    /// format stores exactly that (FP8: E4M3 × scale). A source that already holds such codes
    /// (`ScaledCodes`: a ModelOpt FP8 checkpoint) is then copied, not re-quantized.
    var scaledCodeDType: DType? { get }
    /// How the converter stores the codes of a vector (matrices stay raw).
    var compression: SectionEncoding { get }
    /// What the scales of a [rows, cols] segment cover, for `inspect` (per-row codecs only; block
    /// scales and unscaled formats are described by the inspector).
    func describeScales(rows: Int, cols: Int) -> String
}

extension QuantCodec {
    public var scaleElement: ElementType { .f32 }
    public var hasZeroPoints: Bool { false }
    public var rowBlockScale: RowBlockScale? { nil }
    public var verbatimDType: DType? { nil }
    public var scaledCodeDType: DType? { nil }
    // Quantized codes barely compress (docs/PERFORMANCE.md: 0.82–0.91).
    public var compression: SectionEncoding { .raw }
    public func describeScales(rows: Int, cols: Int) -> String { "no scales" }

    /// Generic fake-quant: encode and decode a few rows at a time through scratch buffers.
    public func fakeQuantByRoundTrip(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float) {
        guard !rows.isEmpty, cols > 0 else { return }
        let cb = codeBytesPerRow(cols: cols), spr = scalesPerRow(cols: cols), sb = spr * scaleElement.byteSize
        let codes = UnsafeMutableRawPointer.allocate(byteCount: max(1, cb), alignment: 64)
        let scales = UnsafeMutableRawPointer.allocate(byteCount: max(1, sb), alignment: 64)
        let zeros = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, spr))
        defer { codes.deallocate(); scales.deallocate(); zeros.deallocate() }
        for r in rows {
            let row = w + r * cols
            encode(row, cols: cols, rows: 0..<1, rowScale: rowScale, codes: codes, scales: scales, zeroPoints: zeros)
            decode(codes: codes, scales: scales, zeroPoints: zeros, rowScale: rowScale, cols: cols, rows: 0..<1, into: row)
        }
    }

    /// The sections a [rows, cols] segment with `rowBlocks` blocks of rows stores, in the order a
    /// reader meets them: `codes`, `scales`, `zero_points`, `global_scales`.
    public func sections(rows: Int, cols: Int, rowBlocks: Int) -> [SectionSpec] {
        var out = [SectionSpec(name: "codes", element: codeElement, count: rows * codeBytesPerRow(cols: cols) / codeElement.byteSize)]
        let perRow = rows * scalesPerRow(cols: cols)
        switch rowBlockScale?.storage {
        case .scales?:
            out.append(SectionSpec(name: "scales", element: .f32, count: rowBlocks))
        case .globalScales?:
            if perRow > 0 { out.append(SectionSpec(name: "scales", element: scaleElement, count: perRow)) }
            if hasZeroPoints && perRow > 0 { out.append(SectionSpec(name: "zero_points", element: .u8, count: perRow)) }
            out.append(SectionSpec(name: "global_scales", element: .f32, count: rowBlocks))
            return out
        case nil:
            if perRow > 0 { out.append(SectionSpec(name: "scales", element: scaleElement, count: perRow)) }
        }
        if hasZeroPoints && perRow > 0 { out.append(SectionSpec(name: "zero_points", element: .u8, count: perRow)) }
        return out
    }
}

/// The element type of a section, as FORMAT.md names it.
public enum ElementType: String, Sendable {
    case u8, i8, f16, bf16, f32
    /// Two unsigned or two's-complement 4-bit integers per byte, low nibble = even column.
    case u4x2 = "u4x2"
    /// Two FP4 E2M1 codes per byte, low nibble = even column (`E2M1`).
    case e2m1x2 = "e2m1x2"
    /// FP8 E4M3 (`FP8E4M3`) bytes.
    case e4m3
    /// OCP E8M0: a biased power-of-two exponent, 2^(byte − 127); 255 is NaN.
    case e8m0

    public var byteSize: Int {
        switch self {
        case .u8, .i8, .u4x2, .e2m1x2, .e4m3, .e8m0: return 1
        case .f16, .bf16: return 2
        case .f32: return 4
        }
    }
}

/// One section a codec stores for a segment: its name (before the segment prefix), element type
/// and count of elements (bytes for the two-per-byte types).
public struct SectionSpec: Hashable, Sendable {
    public var name: String
    public var element: ElementType
    public var count: Int
    public var bytes: Int { count * element.byteSize }
    public init(name: String, element: ElementType, count: Int) {
        self.name = name; self.element = element; self.count = count
    }
}

/// A Float32 scale per block of rows, from the block's absmax (`scale(absMax:)`).
public struct RowBlockScale: Sendable {
    public enum Storage: Sendable {
        /// The `scales` section holds the block scales (fp8-tensor: the block scale is the only scale).
        case scales
        /// A `global_scales` section holds them, next to per-row scales (NVFP4's second level).
        case globalScales
    }
    public var storage: Storage
    public var scale: @Sendable (_ absMax: Float) -> Float
    public init(storage: Storage, scale: @escaping @Sendable (Float) -> Float) {
        self.storage = storage; self.scale = scale
    }
}

/// Parameters of one run of weights on a grid: the scale the elements are divided by, the zero
/// point (asymmetric INT4), and the byte a non-Float32 scale is stored as (E8M0, E4M3).
///
/// ggml's block formats need three more, because their reference encoders pick codes with
/// numbers a decoder never sees: `inverse`, the multiplier that maps a weight onto the code grid
/// (1 / the Float32 scale, while `scale` is its FP16 rounding the block stores; IQ4_NL picks codes
/// under one scale and stores a refitted one), and for the blocks with a minimum (Q4_1, Q5_1)
/// `minimum`, the Float32 minimum codes are counted from, and `minimumValue`, its stored FP16
/// value. Formats that do not use them leave them 0.
public struct GridParameters: Sendable {
    public var scale: Float
    public var zero: Int32
    public var stored: UInt8
    public var inverse: Float
    public var minimum: Float
    public var minimumValue: Float
    public init(scale: Float, zero: Int32 = 0, stored: UInt8 = 0, inverse: Float = 0, minimum: Float = 0,
                minimumValue: Float = 0) {
        self.scale = scale; self.zero = zero; self.stored = stored
        self.inverse = inverse; self.minimum = minimum; self.minimumValue = minimumValue
    }
}

/// How a codec puts single weights on its grid, for encoders that choose scales themselves
/// (GPTQ from already-corrected weights, clipping search from shrunk ranges). With `clip` = 1,
/// `parameters` is the codec's own rule bit for bit, so such encoders reproduce round-to-nearest
/// when they change nothing.
public protocol QuantGrid: Sendable {
    /// Input columns one scale covers; `cols` (or more) for a scale per row.
    func group(cols: Int) -> Int
    /// True when the scales are per group along the row (INT4, MXFP4, NVFP4): GPTQ picks them as
    /// its sweep reaches a group. False for per-row and per-block-of-rows scales.
    var isGrouped: Bool { get }
    /// True when the scale is the block's (fp8-tensor): never chosen per row, never searched.
    var usesRowScaleOnly: Bool { get }
    /// Bits of a code: 4 packs two per byte (low nibble = even column), 8 is one byte (the default
    /// `storeCode`); ggml's Q5 blocks have 5.
    var codeBits: Int { get }
    /// Parameters of w[0..<n] with the range shrunk by `clip`; `rowScale` is the rows' block scale.
    func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float, rowScale: Float) -> GridParameters
    /// (code, the value it decodes to).
    func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float)
    /// Stores group `index`'s parameters (`index` counts scales from the `scales` pointer).
    func store(_ p: GridParameters, at index: Int, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?)

    /// Writes element (`row`, `col`)'s code into the codes (rows `rowBytes` apart); the row was
    /// cleared to zero first. The default packs `codeBits` 4 two per byte (low nibble = even
    /// column) and 8 one per byte; formats that lay codes out otherwise (ggml's blocks) override it.
    func storeCode(_ code: UInt8, row: Int, col: Int, rowBytes: Int, codes: UnsafeMutableRawPointer)
    /// Stores the parameters of group `group` of row `row` (`groupsPerRow` groups a row; 1 and
    /// group 0 for per-row scales). The default writes `store(p, at: row · groupsPerRow + group, …)`
    /// into the scale sections; formats that keep scales inside their code blocks override it.
    func storeParameters(_ p: GridParameters, row: Int, group: Int, groupsPerRow: Int, rowBytes: Int,
                         codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?)
}

extension QuantGrid {
    public var usesRowScaleOnly: Bool { false }
    public func store(_ p: GridParameters, at index: Int, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        scales?.assumingMemoryBound(to: Float.self)[index] = p.scale
    }

    @inline(__always)
    public func storeCode(_ code: UInt8, row: Int, col: Int, rowBytes: Int, codes: UnsafeMutableRawPointer) {
        let b = codes.assumingMemoryBound(to: UInt8.self) + row * rowBytes
        if codeBits == 4 {
            b[col >> 1] |= (col & 1) == 0 ? code : code << 4
        } else {
            b[col] = code
        }
    }

    @inline(__always)
    public func storeParameters(_ p: GridParameters, row: Int, group: Int, groupsPerRow: Int, rowBytes: Int,
                                codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?,
                                zeroPoints: UnsafeMutablePointer<UInt8>?) {
        store(p, at: row * groupsPerRow + group, scales: scales, zeroPoints: zeroPoints)
    }
}
