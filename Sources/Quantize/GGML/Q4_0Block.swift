import Formats

/// ggml's Q4_0: 32 elements, an FP16 scale d then 16 bytes of 4-bit codes (element j in the low
/// nibble of byte j, element j + 16 in its high nibble); value = (q − 8) · d.
///
/// Reference rule (`quantize_row_q4_0_ref`): take the signed element of largest magnitude m (the
/// first on ties), d = m / −8 in Float32, code = min(15, trunc(w · (1/d) + 8.5)) — so the extreme
/// element always gets code 0 (−8 · d = m), halves round up, and +8 · d is clipped to 7 · d — then
/// d is stored rounded to FP16. An all-zero block has d = 0 and codes 8.
public struct Q4_0Block: GGMLBlockCodec {
    public init() {}
    public static var type: GGMLType { .q4_0 }
    public static var schemeName: String { "q4_0" }
    public static var codeBits: Int { 4 }

    @inline(__always)
    public static func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float) -> GridParameters {
        let d = signedAbsMax(w, n).max * clip / -8
        return GridParameters(scale: Float(Float16(d)), inverse: d != 0 ? 1 / d : 0)
    }

    @inline(__always)
    public static func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) {
        let q = truncatedCode(w * p.inverse + 8.5, 15)
        return (UInt8(truncatingIfNeeded: q), Float(q &- 8) * p.scale)
    }

    @inline(__always)
    public static func value(_ code: UInt8, _ p: GridParameters) -> Float { Float(Int32(code) &- 8) * p.scale }

    @inline(__always)
    public static func storeHeader(_ p: GridParameters, _ block: UnsafeMutablePointer<UInt8>) { ggmlStoreHalf(p.scale, block) }

    @inline(__always)
    public static func storeCode(_ code: UInt8, _ j: Int, _ block: UnsafeMutablePointer<UInt8>) { storeNibble(code, j, block + 2) }

    @inline(__always)
    public static func pack(_ codes: UnsafePointer<UInt8>, _ block: UnsafeMutablePointer<UInt8>) { packNibbles(codes, block + 2) }

    static func decode(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<blocks {
            let x = b + i * 18, o = y + i * 32, qs = x + 2
            let d = ggmlHalf(x)
            for j in 0..<16 {
                o[j] = Float(Int32(qs[j] & 0x0F) &- 8) * d
                o[j + 16] = Float(Int32(qs[j] >> 4) &- 8) * d
            }
        }
    }
}
