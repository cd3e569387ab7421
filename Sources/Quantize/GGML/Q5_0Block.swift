import Formats

/// ggml's Q5_0: 32 elements, an FP16 scale d, a little-endian UInt32 `qh` holding bit 4 of every
/// code (bit j for element j), then 16 bytes of the low 4 bits (element j low nibble of byte j,
/// j + 16 high nibble); value = (q − 16) · d.
///
/// Reference rule (`quantize_row_q5_0_ref`): as Q4_0 with 16 for 8: d = m / −16 (m the signed
/// element of largest magnitude), code = min(31, trunc(w · (1/d) + 16.5)), d stored as FP16.
public struct Q5_0Block: GGMLBlockCodec {
    public init() {}
    public static var type: GGMLType { .q5_0 }
    public static var schemeName: String { "q5_0" }
    public static var codeBits: Int { 5 }

    @inline(__always)
    public static func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float) -> GridParameters {
        let d = signedAbsMax(w, n).max * clip / -16
        return GridParameters(scale: Float(Float16(d)), inverse: d != 0 ? 1 / d : 0)
    }

    @inline(__always)
    public static func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) {
        let q = truncatedCode(w * p.inverse + 16.5, 31)
        return (UInt8(truncatingIfNeeded: q), Float(q &- 16) * p.scale)
    }

    @inline(__always)
    public static func value(_ code: UInt8, _ p: GridParameters) -> Float { Float(Int32(code) &- 16) * p.scale }

    @inline(__always)
    public static func storeHeader(_ p: GridParameters, _ block: UnsafeMutablePointer<UInt8>) { ggmlStoreHalf(p.scale, block) }

    @inline(__always)
    public static func storeCode(_ code: UInt8, _ j: Int, _ block: UnsafeMutablePointer<UInt8>) {
        storeHighBit(code, j, block + 2); storeNibble(code, j, block + 6)
    }

    @inline(__always)
    public static func pack(_ codes: UnsafePointer<UInt8>, _ block: UnsafeMutablePointer<UInt8>) {
        packHighBits(codes, block + 2); packNibbles(codes, block + 6)
    }

    static func decode(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<blocks {
            let x = b + i * 22, o = y + i * 32, qs = x + 6
            let d = ggmlHalf(x), qh = ggmlU32(x + 2)
            for j in 0..<16 {
                let h0 = Int32(truncatingIfNeeded: (qh >> UInt32(j)) << 4) & 0x10
                let h1 = Int32(truncatingIfNeeded: qh >> UInt32(j + 12)) & 0x10
                o[j] = Float((Int32(qs[j] & 0x0F) | h0) &- 16) * d
                o[j + 16] = Float((Int32(qs[j] >> 4) | h1) &- 16) * d
            }
        }
    }
}
