import Formats

/// ggml's Q5_1: 32 elements, an FP16 scale d, an FP16 minimum m, the UInt32 `qh` of fifth bits
/// (bit j for element j), then 16 bytes of low 4 bits (element j low nibble of byte j, j + 16
/// high nibble); value = q · d + m (product, then sum — no FMA).
///
/// Reference rule (`quantize_row_q5_1_ref`): as Q4_1 with 31 levels: d = (max − min) / 31,
/// code = trunc((w − min) · (1/d) + 0.5), d and min stored as FP16.
public struct Q5_1Block: GGMLBlockCodec {
    public init() {}
    public static var type: GGMLType { .q5_1 }
    public static var schemeName: String { "q5_1" }
    public static var codeBits: Int { 5 }

    @inline(__always)
    public static func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float) -> GridParameters {
        asymmetricParameters(w, n, clip: clip, levels: 31)
    }

    @inline(__always)
    public static func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) {
        let q = truncatedCode((w - p.minimum) * p.inverse + 0.5, 31)
        return (UInt8(truncatingIfNeeded: q), Float(q) * p.scale + p.minimumValue)
    }

    @inline(__always)
    public static func value(_ code: UInt8, _ p: GridParameters) -> Float { Float(code) * p.scale + p.minimumValue }

    @inline(__always)
    public static func storeHeader(_ p: GridParameters, _ block: UnsafeMutablePointer<UInt8>) {
        ggmlStoreHalf(p.scale, block); ggmlStoreHalf(p.minimumValue, block + 2)
    }

    @inline(__always)
    public static func storeCode(_ code: UInt8, _ j: Int, _ block: UnsafeMutablePointer<UInt8>) {
        storeHighBit(code, j, block + 4); storeNibble(code, j, block + 8)
    }

    @inline(__always)
    public static func pack(_ codes: UnsafePointer<UInt8>, _ block: UnsafeMutablePointer<UInt8>) {
        packHighBits(codes, block + 4); packNibbles(codes, block + 8)
    }

    static func decode(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<blocks {
            let x = b + i * 24, o = y + i * 32, qs = x + 8
            let d = ggmlHalf(x), m = ggmlHalf(x + 2), qh = ggmlU32(x + 4)
            for j in 0..<16 {
                let h0 = UInt32((qh >> UInt32(j)) << 4) & 0x10
                let h1 = (qh >> UInt32(j + 12)) & 0x10
                o[j] = Float(UInt32(qs[j] & 0x0F) | h0) * d + m
                o[j + 16] = Float(UInt32(qs[j] >> 4) | h1) * d + m
            }
        }
    }
}
