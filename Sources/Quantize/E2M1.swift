/// FP4 `E2M1` (OCP MX v1.0, NVIDIA's FP4): 1 sign, 2 exponent (bias 1), 1 mantissa bit, no
/// infinities or NaN. The 16 codes are ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}: code & 7 indexes the
/// magnitudes in order, bit 3 is the sign (8 is −0).
///
/// Encoding rounds to nearest with ties to even — to the code whose mantissa bit is 0 — at every
/// midpoint: 0.25 → 0, 0.75 → 1, 1.25 → 1, 1.75 → 2, 2.5 → 2, 3.5 → 4, 5 → 4; above 5 it
/// saturates to 6. This is bit for bit ModelOpt's `NVFP4QTensor._cast_fp4`, which counts the
/// bounds [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5] below |x| (`searchsorted`, a tie stays low) and
/// adds one on the ties whose lower neighbour is odd, 0.75, 1.75 and 3.5. The sign bit is x < 0,
/// so −0.0 encodes as +0 and a small negative value as −0 (code 8). A NaN input gives code 0.
///
/// Blocks of these codes carry a shared scale: an E8M0 power of two (MXFP4, `MXFP4Codec`) or an
/// E4M3 scale times a Float32 one (NVFP4, `NVFP4Codec`). Two codes pack per byte, low nibble =
/// even column, as INT4 does.
public enum E2M1 {
    /// Value of every code, indexed by the code.
    public static let values: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]
    public static let maxFinite: Float = 6

    /// Round-to-nearest-even code of `x` (see the type's notes). Branch-free compares: the loops
    /// that call this vectorize.
    @inlinable @inline(__always)
    public static func encode(_ x: Float) -> UInt8 {
        let a = abs(x)
        var m: UInt32 = a > 0.25 ? 1 : 0
        m &+= a >= 0.75 ? 1 : 0
        m &+= a > 1.25 ? 1 : 0
        m &+= a >= 1.75 ? 1 : 0
        m &+= a > 2.5 ? 1 : 0
        m &+= a >= 3.5 ? 1 : 0
        m &+= a > 5 ? 1 : 0
        return UInt8(truncatingIfNeeded: m | (x < 0 ? 8 : 0))
    }

    @inlinable @inline(__always)
    public static func decode(_ c: UInt8) -> Float { values[Int(c & 0x0F)] }

    // MARK: E8M0 (MXFP4's block scale)

    /// 2^(b − 127); 255 is NaN (never written). b = 0 is 2^-127, a Float32 subnormal, exactly.
    @inlinable
    public static func e8m0Value(_ b: UInt8) -> Float {
        if b == 255 { return .nan }
        if b == 0 { return Float(bitPattern: 0x0040_0000) }
        return Float(bitPattern: UInt32(b) << 23)
    }

    // MARK: rows of blocks

    /// Encodes one row of `cols` values, element j divided by `divisors[j / group]`, as packed
    /// codes (an odd row ends in a byte whose high nibble is 0).
    @inline(__always)
    static func encodeRow(_ w: UnsafePointer<Float>, cols: Int, group: Int, divisors: UnsafePointer<Float>,
                          nibbles: UnsafeMutablePointer<UInt8>, codes: UnsafeMutablePointer<UInt8>) {
        var j0 = 0, b = 0
        while j0 < cols {
            let j1 = min(cols, j0 + group), d = divisors[b]
            for j in j0..<j1 { nibbles[j] = encode(w[j] / d) }
            j0 = j1; b += 1
        }
        Int4Codec.pack(nibbles, cols, codes)
    }

    /// Decodes one row: value(code_j) · `multipliers[j / group]`.
    @inline(__always)
    static func decodeRow(_ codes: UnsafePointer<UInt8>, cols: Int, group: Int, multipliers: UnsafePointer<Float>,
                          nibbles: UnsafeMutablePointer<UInt8>, into out: UnsafeMutablePointer<Float>) {
        Int4Codec.unpackUnsigned(codes, cols, nibbles)
        values.withUnsafeBufferPointer { t in
            var j0 = 0, b = 0
            while j0 < cols {
                let j1 = min(cols, j0 + group), s = multipliers[b]
                for j in j0..<j1 { out[j] = t[Int(nibbles[j])] * s }
                j0 = j1; b += 1
            }
        }
    }
}
