/// INT8, symmetric, one Float32 scale per output channel (row).
///
/// s = max|w| over the row / 127 (1 when that is 0), q = clamp(round-half-even(w / s), -127, 127),
/// w' = q · s — reference.json's "int8-channel" baseline bit for bit: the quotient is a real
/// division, not a multiplication by 1/s, because the two differ in the last bit often enough to
/// move codes at rounding ties. -128 is never produced, so the code range is symmetric.
///
/// Layout: codes Int8 [rows, cols] row-major, scales Float32 [rows].
///
/// Every function takes pointers to row 0 of the whole matrix and a `rows` range, so a caller can
/// split one tensor's rows across threads; each row is independent.
public enum Int8Codec {
    public static func encode(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>,
                              codes: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>) {
        for r in rows {
            let src = w + r * cols
            let dst = codes + r * cols
            let s = safeScale(absMax: finiteAbsMax(src, cols), levels: 127)
            scales[r] = s
            for j in 0..<cols {
                dst[j] = Int8(truncatingIfNeeded: clamp(roundHalfEven(src[j] / s), -127, 127))
            }
        }
    }

    public static func decode(codes: UnsafePointer<Int8>, scales: UnsafePointer<Float>, cols: Int,
                              rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        for r in rows {
            let src = codes + r * cols
            let dst = out + r * cols
            let s = scales[r]
            for j in 0..<cols { dst[j] = Float(src[j]) * s }
        }
    }

    /// decode(encode(w)) written back into `w`, with the same arithmetic as encode + decode, so the
    /// result is bit-identical to them.
    public static func fakeQuant(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>) {
        for r in rows {
            let row = w + r * cols
            let s = safeScale(absMax: finiteAbsMax(row, cols), levels: 127)
            for j in 0..<cols {
                row[j] = Float(clamp(roundHalfEven(row[j] / s), -127, 127)) * s
            }
        }
    }
}
