import Formats

/// ggml's Q8_0: 32 elements, an FP16 scale d then 32 signed bytes; value = q · d.
///
/// Reference rule (`quantize_row_q8_0_ref`): d = amax / 127 in Float32, codes round(w · (1/d)) with
/// ties away from zero (C `roundf`), then d is stored rounded to FP16 — the codes are chosen with
/// the Float32 scale, the decoder multiplies by the FP16 one. An all-zero block has d = 0, codes 0.
public struct Q8_0Block: GGMLBlockCodec {
    public init() {}
    public static var type: GGMLType { .q8_0 }
    public static var schemeName: String { "q8_0" }
    public static var codeBits: Int { 8 }

    @inline(__always)
    public static func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float) -> GridParameters {
        let d = finiteAbsMax(w, n) * clip / 127
        return GridParameters(scale: Float(Float16(d)), inverse: d != 0 ? 1 / d : 0)
    }

    @inline(__always)
    public static func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) {
        let r = (w * p.inverse).rounded(.toNearestOrAwayFromZero)
        let c = r > -128 ? (r < 127 ? r : 127) : -128    // NaN → −128, never a trap
        let q = Int32(bitPattern: (c + 12_582_912).bitPattern) &- 0x4B40_0000
        return (UInt8(truncatingIfNeeded: q), Float(q) * p.scale)
    }

    @inline(__always)
    public static func value(_ code: UInt8, _ p: GridParameters) -> Float { Float(Int8(bitPattern: code)) * p.scale }

    @inline(__always)
    public static func storeHeader(_ p: GridParameters, _ block: UnsafeMutablePointer<UInt8>) {
        ggmlStoreHalf(p.scale, block)
    }

    @inline(__always)
    public static func storeCode(_ code: UInt8, _ j: Int, _ block: UnsafeMutablePointer<UInt8>) { block[2 + j] = code }

    @inline(__always)
    public static func pack(_ codes: UnsafePointer<UInt8>, _ block: UnsafeMutablePointer<UInt8>) {
        (block + 2).update(from: codes, count: 32)
    }

    static func decode(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<blocks {
            let x = b + i * 34, o = y + i * 32
            let d = ggmlHalf(x)
            let q = UnsafeRawPointer(x + 2).assumingMemoryBound(to: Int8.self)
            for j in 0..<32 { o[j] = Float(q[j]) * d }
        }
    }
}
