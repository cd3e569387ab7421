import Formats

/// ggml's Q4_1: 32 elements, an FP16 scale d, an FP16 minimum m, then 16 bytes of 4-bit codes
/// (element j low nibble of byte j, j + 16 high nibble); value = q · d + m (a rounded product,
/// then a rounded sum — no FMA).
///
/// Reference rule (`quantize_row_q4_1_ref`): min and max of the block, d = (max − min) / 15 in
/// Float32, code = min(15, trunc((w − min) · (1/d) + 0.5)) (halves round up), then d and min are
/// stored rounded to FP16. Codes are counted from the Float32 minimum; the decoder adds the FP16 one.
public struct Q4_1Block: GGMLBlockCodec {
    public init() {}
    public static var type: GGMLType { .q4_1 }
    public static var schemeName: String { "q4_1" }
    public static var codeBits: Int { 4 }

    @inline(__always)
    public static func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float) -> GridParameters {
        asymmetricParameters(w, n, clip: clip, levels: 15)
    }

    @inline(__always)
    public static func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) {
        let q = truncatedCode((w - p.minimum) * p.inverse + 0.5, 15)
        return (UInt8(truncatingIfNeeded: q), Float(q) * p.scale + p.minimumValue)
    }

    @inline(__always)
    public static func value(_ code: UInt8, _ p: GridParameters) -> Float { Float(code) * p.scale + p.minimumValue }

    @inline(__always)
    public static func storeHeader(_ p: GridParameters, _ block: UnsafeMutablePointer<UInt8>) {
        ggmlStoreHalf(p.scale, block); ggmlStoreHalf(p.minimumValue, block + 2)
    }

    @inline(__always)
    public static func storeCode(_ code: UInt8, _ j: Int, _ block: UnsafeMutablePointer<UInt8>) { storeNibble(code, j, block + 4) }

    @inline(__always)
    public static func pack(_ codes: UnsafePointer<UInt8>, _ block: UnsafeMutablePointer<UInt8>) { packNibbles(codes, block + 4) }

    static func decode(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<blocks {
            let x = b + i * 20, o = y + i * 32, qs = x + 4
            let d = ggmlHalf(x), m = ggmlHalf(x + 2)
            for j in 0..<16 {
                o[j] = Float(qs[j] & 0x0F) * d + m
                o[j + 16] = Float(qs[j] >> 4) * d + m
            }
        }
    }
}

/// Q4_1 / Q5_1 block parameters: the block's min and max (shrunk about their midpoint by `clip`
/// when clip < 1), d = (max − min) / levels, both stored as FP16.
@inline(__always)
func asymmetricParameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float, levels: Float) -> GridParameters {
    var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
    for j in 0..<n {
        let v = w[j]
        if v < lo { lo = v }
        if v > hi { hi = v }
    }
    if clip != 1 {
        let mid = (hi + lo) / 2, half = (hi - lo) / 2 * clip
        lo = mid - half; hi = mid + half
    }
    let d = (hi - lo) / levels
    return GridParameters(scale: Float(Float16(d)), inverse: d != 0 ? 1 / d : 0, minimum: lo,
                          minimumValue: Float(Float16(lo)))
}
