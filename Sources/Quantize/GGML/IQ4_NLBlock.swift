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
public enum IQ4_NLBlock: GGMLBlockFormat {
    public static var type: GGMLType { .iq4_nl }
    public static var schemeName: String { "iq4_nl" }
    public static var codeBits: Int { 4 }

    /// ggml's `kvalues_iq4nl`.
    public static let values: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
    static let grid: (Float, Float, Float, Float, Float, Float, Float, Float,
                      Float, Float, Float, Float, Float, Float, Float, Float) =
        (-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113)

    @inline(__always)
    static func value(_ i: Int) -> Float {
        withUnsafeBytes(of: grid) { $0.load(fromByteOffset: 4 * (i & 15), as: Float.self) }
    }

    /// ggml's `best_index_int8` on the IQ4_NL grid: the nearest grid point to x, the upper one of
    /// two equally near, the ends for anything beyond them (NaN gives 15, never a trap).
    @inline(__always)
    public static func nearestIndex(_ x: Float) -> Int {
        if x <= -127 { return 0 }
        if x >= 113 { return 15 }
        // mu: the first grid point above x (the binary search's result, found by counting).
        var mu = 1
        for k in 1..<15 where value(k) <= x { mu = k + 1 }
        return x - value(mu - 1) < value(mu) - x ? mu - 1 : mu
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
    public static func storeHeader(_ p: GridParameters, _ block: UnsafeMutablePointer<UInt8>) { ggmlStoreHalf(p.scale, block) }

    @inline(__always)
    public static func storeCode(_ code: UInt8, _ j: Int, _ block: UnsafeMutablePointer<UInt8>) { storeNibble(code, j, block + 2) }

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
