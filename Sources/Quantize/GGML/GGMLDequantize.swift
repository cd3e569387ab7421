import Formats

/// Decodes ggml block bytes — a GGUF tensor's data, or the `codes` section of a `q4_0`…`iq4_nl`
/// segment in a packed file — to Float32, bit for bit what ggml's `dequantize_row_*` computes.
///
/// One call decodes a run of whole blocks of one type: the type is switched on once per call, then
/// a plain loop per type runs over raw pointers (`Q4_0Block` … `MXFP4Block`, `GGMLKQuants`,
/// `GGMLIQuants`). Arithmetic is done as ggml's C source spells it, in Float32, one operation at a
/// time and never fused into an FMA (gguf-py's numpy reference does the same), so `x*d + m` here is
/// a rounded product and then a rounded sum.
public enum GGMLDequantize {
    /// The types `decode` handles: every type llama.cpp writes for these models.
    public static let decodable: Set<GGMLType> = [
        .f32, .f16, .bf16,
        .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl, .mxfp4,
        .q2_K, .q3_K, .q4_K, .q5_K, .q6_K,
        .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq4_xs,
    ]

    /// Whether `decode` handles `type`.
    public static func supports(_ type: GGMLType) -> Bool { decodable.contains(type) }

    /// Decodes `blocks` consecutive blocks of `type` starting at `src` into
    /// `out[0 ..< blocks · type.blockSize]`. `src` needs no alignment. Precondition: `supports(type)`.
    public static func decode(_ type: GGMLType, _ src: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(supports(type), "ggml type \(type.name) cannot be decoded")
        guard blocks > 0 else { return }
        let b = src.assumingMemoryBound(to: UInt8.self)
        switch type {
        case .f32: for i in 0..<blocks { out[i] = Float(bitPattern: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        case .f16: for i in 0..<blocks { out[i] = ggmlHalf(b + 2 * i) }
        case .bf16: for i in 0..<blocks { out[i] = Float(bitPattern: UInt32(ggmlU16(b + 2 * i)) &<< 16) }
        case .q4_0: Q4_0Block.decode(b, blocks, out)
        case .q4_1: Q4_1Block.decode(b, blocks, out)
        case .q5_0: Q5_0Block.decode(b, blocks, out)
        case .q5_1: Q5_1Block.decode(b, blocks, out)
        case .q8_0: Q8_0Block.decode(b, blocks, out)
        case .iq4_nl: IQ4_NLBlock.decode(b, blocks, out)
        case .mxfp4: MXFP4Block.decode(b, blocks, out)
        case .q2_K: GGMLKQuants.decodeQ2_K(b, blocks, out)
        case .q3_K: GGMLKQuants.decodeQ3_K(b, blocks, out)
        case .q4_K: GGMLKQuants.decodeQ4_K(b, blocks, out)
        case .q5_K: GGMLKQuants.decodeQ5_K(b, blocks, out)
        case .q6_K: GGMLKQuants.decodeQ6_K(b, blocks, out)
        case .iq2_xxs: GGMLIQuants.decodeIQ2_XXS(b, blocks, out)
        case .iq2_xs: GGMLIQuants.decodeIQ2_XS(b, blocks, out)
        case .iq2_s: GGMLIQuants.decodeIQ2_S(b, blocks, out)
        case .iq3_xxs: GGMLIQuants.decodeIQ3_XXS(b, blocks, out)
        case .iq3_s: GGMLIQuants.decodeIQ3_S(b, blocks, out)
        case .iq4_xs: GGMLIQuants.decodeIQ4_XS(b, blocks, out)
        default: preconditionFailure("unreachable: \(type.name)")
        }
    }

    /// Decodes rows `rows` of a [*, cols] tensor of `type` stored row after row (a GGUF tensor's
    /// layout) into `out` (row 0 of the whole matrix). Precondition: cols is a whole number of blocks.
    public static func decodeRows(_ type: GGMLType, _ src: UnsafeRawPointer, cols: Int, rows: Range<Int>,
                                  into out: UnsafeMutablePointer<Float>) {
        guard let rowBytes = type.rowBytes(cols: cols) else {
            preconditionFailure("\(cols) columns are not whole \(type.name) blocks of \(type.blockSize)")
        }
        let perRow = cols / type.blockSize
        for r in rows { decode(type, src + r * rowBytes, blocks: perRow, into: out + r * cols) }
    }
}

/// Little-endian UInt16 at `p` (block fields are unaligned).
@inline(__always)
func ggmlU16(_ p: UnsafePointer<UInt8>) -> UInt16 { UInt16(p[0]) | UInt16(p[1]) &<< 8 }

/// Little-endian UInt32 at `p`.
@inline(__always)
func ggmlU32(_ p: UnsafePointer<UInt8>) -> UInt32 {
    UInt32(p[0]) | UInt32(p[1]) &<< 8 | UInt32(p[2]) &<< 16 | UInt32(p[3]) &<< 24
}

/// The IEEE half at `p` widened to Float (exact).
@inline(__always)
func ggmlHalf(_ p: UnsafePointer<UInt8>) -> Float { Float(Float16(bitPattern: ggmlU16(p))) }

/// Stores `x` rounded to half (round-to-nearest-even, what GGML_FP32_TO_FP16 does) at `p`;
/// returns the half's value, the scale a decoder will see.
@inline(__always)
@discardableResult
func ggmlStoreHalf(_ x: Float, _ p: UnsafeMutablePointer<UInt8>) -> Float {
    let h = Float16(x)
    let bits = h.bitPattern
    p[0] = UInt8(truncatingIfNeeded: bits); p[1] = UInt8(truncatingIfNeeded: bits &>> 8)
    return Float(h)
}
