/// FP8 `float8_e4m3fn`: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities; S.1111.111
/// (0x7F, 0xFF) is NaN, so the largest finite value is 1.110 · 2^8 = 448; subnormals are m · 2^-9.
///
/// Scaled use (reference.json's fp8 baselines): s = max|w| / 448 over the whole tensor or over
/// each row (1 when that is 0), q = e4m3(w / s) with round-to-nearest-even, w' = decode(q) · s.
///
/// For a routed-expert layer, reference.json's per-tensor scale is shared by all experts of the
/// layer: view the stacked [experts, out, in] weight as one [experts·out, in] matrix, or take
/// `tensorScale` over the stacked weight and pass it to each expert's `encode`.
public enum FP8E4M3 {
    public static let maxFinite: Float = 448
    public static let nanCode: UInt8 = 0x7F

    /// Round-to-nearest-even conversion; beyond ±448 (infinities included) it saturates to ±448,
    /// NaN becomes 0x7F, and the sign of zero (and of values that round to zero) is kept.
    @inlinable @inline(__always)
    public static func encode(_ x: Float) -> UInt8 {
        let u = x.bitPattern
        // |x|'s bits as a non-negative Int32: AVX2 has signed but no unsigned vector compares.
        let a = Int32(bitPattern: u & 0x7FFF_FFFF)
        // Normal results (|x| ≥ 2^-6): round the Float's mantissa to 3 bits in place, a carry
        // rolling into the exponent as it should, then rebias the exponent from 127 to 7.
        let normal = ((a &+ 0x7_FFFF &+ ((a >> 20) & 1)) >> 20) &- (120 << 3)
        // Subnormal results: adding 2^14, whose ulp is 2^-9, makes the FPU round |x| to a multiple
        // of 2^-9 (half to even); the low mantissa bits are then the code, 0...8 (8 = 2^-6, normal).
        let sub = Int32(bitPattern: (Float(bitPattern: UInt32(bitPattern: a)) + 16384).bitPattern) &- 0x4680_0000
        var mag = a < 0x3C80_0000 ? sub : normal
        mag = a >= 0x43E0_0000 ? 0x7E : mag
        // Everything stays 32-bit until one final narrowing, which keeps the vector loop short.
        let code = a > 0x7F80_0000 ? Int32(nanCode) : mag | Int32(bitPattern: (u >> 24) & 0x80)
        return UInt8(truncatingIfNeeded: code)
    }

    @inlinable @inline(__always)
    public static func decode(_ c: UInt8) -> Float { decodeTable[Int(c)] }

    /// decode(encode(x)), bit for bit, computed in place of the Float's bits: the same rounding
    /// as `encode` with the mantissa left in place. A table lookup inside a loop is a gather that
    /// keeps fake-quant at a third of the speed of this.
    @inlinable @inline(__always)
    public static func roundTrip(_ x: Float) -> Float {
        let u = x.bitPattern
        let a = u & 0x7FFF_FFFF
        let normal = (a &+ 0x7_FFFF &+ ((a >> 20) & 1)) & 0xFFF0_0000
        let sub = ((Float(bitPattern: a) + 16384) - 16384).bitPattern
        var mag = a < 0x3C80_0000 ? sub : normal
        mag = a >= 0x43E0_0000 ? 0x43E0_0000 : mag
        let r = Float(bitPattern: mag | (u & 0x8000_0000))
        return a > 0x7F80_0000 ? .nan : r
    }

    /// Value of every code, indexed by the code.
    public static let decodeTable: [Float] = (0..<256).map { (c: Int) -> Float in
        let e = UInt32((c >> 3) & 0xF), m = UInt32(c & 7)
        if e == 0xF && m == 7 { return .nan }
        let magnitude = e == 0
            ? Float(m) * 0x1p-9
            : Float(bitPattern: ((e + 120) << 23) | (m << 20))
        return c & 0x80 != 0 ? -magnitude : magnitude
    }

    // MARK: scales

    /// s = max|w| / 448 over `w[0..<count]` (finite values only; 1 when that is 0). The absmax
    /// of a split tensor is the max of its parts' `absMax`, then `scale(absMax:)`.
    public static func tensorScale(_ w: UnsafePointer<Float>, count: Int) -> Float {
        scale(absMax: absMax(w, count: count))
    }

    public static func absMax(_ w: UnsafePointer<Float>, count: Int) -> Float { finiteAbsMax(w, count) }

    public static func scale(absMax: Float) -> Float { safeScale(absMax: absMax, levels: maxFinite) }

    // MARK: one scale for a run of elements (per-tensor)

    public static func encode(_ w: UnsafePointer<Float>, count: Int, scale s: Float,
                              codes: UnsafeMutablePointer<UInt8>) {
        for i in 0..<count { codes[i] = encode(w[i] / s) }
    }

    public static func decode(codes: UnsafePointer<UInt8>, count: Int, scale s: Float,
                              into out: UnsafeMutablePointer<Float>) {
        decodeTable.withUnsafeBufferPointer { t in
            let table = t.baseAddress!
            for i in 0..<count { out[i] = table[Int(codes[i])] * s }
        }
    }

    public static func fakeQuant(_ w: UnsafeMutablePointer<Float>, count: Int, scale s: Float) {
        for i in 0..<count { w[i] = roundTrip(w[i] / s) * s }
    }

    // MARK: one scale per row (per-output-channel)

    /// Layout: codes [rows, cols], scales Float32 [rows]; pointers are to row 0 of the whole matrix.
    public static func encodeChannel(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>,
                                     codes: UnsafeMutablePointer<UInt8>, scales: UnsafeMutablePointer<Float>) {
        for r in rows {
            let s = tensorScale(w + r * cols, count: cols)
            scales[r] = s
            encode(w + r * cols, count: cols, scale: s, codes: codes + r * cols)
        }
    }

    public static func decodeChannel(codes: UnsafePointer<UInt8>, scales: UnsafePointer<Float>, cols: Int,
                                     rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        for r in rows {
            decode(codes: codes + r * cols, count: cols, scale: scales[r], into: out + r * cols)
        }
    }

    public static func fakeQuantChannel(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>) {
        for r in rows {
            fakeQuant(w + r * cols, count: cols, scale: tensorScale(w + r * cols, count: cols))
        }
    }
}
