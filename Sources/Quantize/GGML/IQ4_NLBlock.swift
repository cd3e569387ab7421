import Formats

/// ggml's IQ4_NL: 32 elements, an FP16 scale d then 16 bytes of 4-bit indices (element j low
/// nibble of byte j, j + 16 high nibble) into a fixed non-uniform grid of 16 integers
/// (`values`, denser near zero, the shape of a normal distribution's quantiles); value = d · grid[q].
///
/// Reference rule (`quantize_row_iq4_nl_ref`, which calls the shared IQ4 routine with no
/// importance weights and no scale search): take m, the signed element of largest magnitude;
/// each code is the grid point nearest w · (1/d₀) with d₀ = m / −127 (ties to the larger point);
/// then, with weights wⱼ = xⱼ², d is refitted by weighted least squares over those codes,
/// d = Σ wⱼ·qⱼ·xⱼ / Σ wⱼ·qⱼ² (sums in element order, Float32), and stored as FP16. So codes are
/// chosen under d₀ and decoded under d. A block with max |w| < 1e-15 stores d = 0; ggml leaves its
/// codes uninitialised there, we write index 8 (grid value 1, the nearest to 0), so it decodes to +0.
///
/// (`quantize_iq4_nl`, what llama-quantize calls, additionally tries 15 scales around d₀ and may use
/// an importance matrix; our `mse` / `gptq` calibration methods search scales on this grid instead.)
public struct IQ4_NLBlock: GGMLBlockCodec {
    public init() {}
    public static var type: GGMLType { .iq4_nl }
    public static var schemeName: String { "iq4_nl" }
    public static var codeBits: Int { 4 }

    /// ggml's `kvalues_iq4nl`.
    public static let values: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    /// Grid value i as Float (a constant table in the function, so hot loops need no global).
    @inline(__always)
    static func value(_ i: Int) -> Float {
        let grid: (Float, Float, Float, Float, Float, Float, Float, Float,
                   Float, Float, Float, Float, Float, Float, Float, Float) =
            (-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113)
        return withUnsafeBytes(of: grid) { $0.load(fromByteOffset: 4 * (i & 15), as: Float.self) }
    }

    /// ggml's `best_index_int8` on the IQ4_NL grid: the nearest grid point to x, the upper one of
    /// two equally near, the ends for anything beyond them.
    ///
    /// ggml binary-searches and then compares x − v[k] < v[k+1] − x in Float32. Counting the
    /// midpoints (v[k] + v[k+1]) / 2 that x reaches gives the same index: near a midpoint (|x| > 4)
    /// both differences are exact (x and the integers share an exponent range), and elsewhere
    /// rounding is monotonic, so it cannot reverse the comparison. The count is branch-free and
    /// vectorizes; the test compares it with the binary search on every midpoint and its neighbours.
    @inline(__always)
    public static func nearestIndex(_ x: Float) -> Int {
        var i = 0
        i += x >= -115.5 ? 1 : 0; i += x >= -93.5 ? 1 : 0; i += x >= -74 ? 1 : 0; i += x >= -57 ? 1 : 0
        i += x >= -42 ? 1 : 0; i += x >= -28.5 ? 1 : 0; i += x >= -16 ? 1 : 0; i += x >= -4.5 ? 1 : 0
        i += x >= 7 ? 1 : 0; i += x >= 19 ? 1 : 0; i += x >= 31.5 ? 1 : 0; i += x >= 45.5 ? 1 : 0
        i += x >= 61 ? 1 : 0; i += x >= 79 ? 1 : 0; i += x >= 101 ? 1 : 0
        return i
    }

    @inline(__always)
    public static func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float) -> GridParameters {
        let (m, amax) = signedAbsMax(w, n)
        if amax * clip < 1e-15 { return GridParameters(scale: 0, inverse: 0) }
        let d0 = m * clip / -127
        let id = 1 / d0
        var sumqx: Float = 0, sumq2: Float = 0
        for j in 0..<n {
            let x = w[j]
            let q = value(nearestIndex(id * x))
            let wt = x * x
            sumqx += wt * q * x
            sumq2 += wt * q * q
        }
        let d = sumq2 > 0 ? sumqx / sumq2 : 0
        return GridParameters(scale: Float(Float16(d)), inverse: id)
    }

    @inline(__always)
    public static func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) {
        let i = nearestIndex(p.inverse * w)
        return (UInt8(truncatingIfNeeded: i), p.scale * value(i))
    }

    @inline(__always)
    public static func value(_ code: UInt8, _ p: GridParameters) -> Float { p.scale * value(Int(code)) }

    @inline(__always)
    public static func storeHeader(_ p: GridParameters, _ block: UnsafeMutablePointer<UInt8>) { ggmlStoreHalf(p.scale, block) }

    @inline(__always)
    public static func storeCode(_ code: UInt8, _ j: Int, _ block: UnsafeMutablePointer<UInt8>) { storeNibble(code, j, block + 2) }

    @inline(__always)
    public static func pack(_ codes: UnsafePointer<UInt8>, _ block: UnsafeMutablePointer<UInt8>) { packNibbles(codes, block + 2) }

    static func decode(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        var table = [Float](repeating: 0, count: 16)
        for i in 0..<16 { table[i] = value(i) }
        table.withUnsafeBufferPointer { tb in
            let t = tb.baseAddress!
            for i in 0..<blocks {
                let x = b + i * 18, o = y + i * 32, qs = x + 2
                let d = ggmlHalf(x)
                for j in 0..<16 {
                    o[j] = d * t[Int(qs[j] & 0x0F)]
                    o[j + 16] = d * t[Int(qs[j] >> 4)]
                }
            }
        }
    }
}
