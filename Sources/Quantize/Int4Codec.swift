/// INT4 with one Float32 scale per group of `group` consecutive input columns of a row.
///
/// Symmetric (reference.json's naive "int4-gN"): s = max|w| over the group / 7 (1 when that is 0),
/// q = clamp(round-half-even(w / s), -8, 7), w' = q · s. Codes are two's-complement nibbles.
///
/// Asymmetric: the group's range [lo, hi] is widened to contain 0 (lo = min(min w, 0),
/// hi = max(max w, 0)); s = (hi - lo) / 15 (1 when that is 0), zp = clamp(round-half-even(-lo / s), 0, 15),
/// q = clamp(round-half-even(w / s) + zp, 0, 15), w' = (q - zp) · s. Including 0 keeps zp inside
/// 0...15 (an all-positive or all-negative group, max == min ≠ 0 included, keeps its values within
/// s / 2 instead of being crushed onto one end of the code range) and makes 0 exactly representable.
/// An all-zero group gets s = 1, zp = 0, codes 0.
///
/// Rows whose width `group` does not divide: each row has ceil(cols / group) groups and the last
/// one covers only the remaining cols % group columns; its scale (and zero point) comes from those
/// real columns alone. That is exactly reference.json's "zero-padded to a multiple of N" for both
/// variants, since padding zeros change neither max|w| nor a range that already contains 0. Groups
/// never straddle rows, and the scheme never silently changes to another one.
///
/// Layout:
/// - codes: [rows, bytesPerRow(cols)] bytes, two codes per byte, the even column in the low nibble
///   and the odd column in the high nibble; a row of odd width ends with a byte whose high nibble is
///   0, so every row starts on a byte boundary.
/// - scales: Float32 [rows, groupsPerRow(cols, group)].
/// - zero points (asymmetric only): one UInt8 (0...15) per group, [rows, groupsPerRow], unpacked.
///
/// Every function takes pointers to row 0 of the whole matrix and a `rows` range, so a caller can
/// split one tensor's rows across threads.
public enum Int4Codec {
    public static func groupsPerRow(cols: Int, group: Int) -> Int {
        precondition(group > 0, "INT4 group size must be positive")
        return (cols + group - 1) / group
    }

    public static func bytesPerRow(cols: Int) -> Int { (cols + 1) / 2 }

    // MARK: symmetric

    public static func encodeSymmetric(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>, group: Int,
                                       codes: UnsafeMutablePointer<UInt8>,
                                       scales: UnsafeMutablePointer<Float>) {
        let groups = groupsPerRow(cols: cols, group: group)
        let nibbles = UnsafeMutablePointer<UInt8>.allocate(capacity: max(cols, 1))
        defer { nibbles.deallocate() }
        for r in rows {
            let src = w + r * cols
            let sc = scales + r * groups
            for g in 0..<groups {
                let j0 = g * group, j1 = min(j0 + group, cols)
                let s = safeScale(absMax: finiteAbsMax(src + j0, j1 - j0), levels: 7)
                sc[g] = s
                for j in j0..<j1 {
                    nibbles[j] = UInt8(truncatingIfNeeded: clamp(roundHalfEven(src[j] / s), -8, 7)) & 0x0F
                }
            }
            pack(nibbles, cols, codes + r * bytesPerRow(cols: cols))
        }
    }

    public static func decodeSymmetric(codes: UnsafePointer<UInt8>, scales: UnsafePointer<Float>,
                                       cols: Int, rows: Range<Int>, group: Int,
                                       into out: UnsafeMutablePointer<Float>) {
        let groups = groupsPerRow(cols: cols, group: group)
        let q = UnsafeMutablePointer<Int8>.allocate(capacity: max(cols, 1))
        defer { q.deallocate() }
        for r in rows {
            unpackSigned(codes + r * bytesPerRow(cols: cols), cols, q)
            let sc = scales + r * groups
            let dst = out + r * cols
            for g in 0..<groups {
                let j0 = g * group, j1 = min(j0 + group, cols)
                let s = sc[g]
                for j in j0..<j1 { dst[j] = Float(q[j]) * s }
            }
        }
    }

    /// decode(encodeSymmetric(w)) in place, bit-identical to the two.
    public static func fakeQuantSymmetric(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>,
                                          group: Int) {
        let groups = groupsPerRow(cols: cols, group: group)
        for r in rows {
            let row = w + r * cols
            for g in 0..<groups {
                let j0 = g * group, j1 = min(j0 + group, cols)
                let s = safeScale(absMax: finiteAbsMax(row + j0, j1 - j0), levels: 7)
                for j in j0..<j1 { row[j] = Float(clamp(roundHalfEven(row[j] / s), -8, 7)) * s }
            }
        }
    }

    // MARK: asymmetric

    public static func encodeAsymmetric(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>, group: Int,
                                        codes: UnsafeMutablePointer<UInt8>,
                                        scales: UnsafeMutablePointer<Float>,
                                        zeroPoints: UnsafeMutablePointer<UInt8>) {
        let groups = groupsPerRow(cols: cols, group: group)
        let nibbles = UnsafeMutablePointer<UInt8>.allocate(capacity: max(cols, 1))
        defer { nibbles.deallocate() }
        for r in rows {
            let src = w + r * cols
            for g in 0..<groups {
                let j0 = g * group, j1 = min(j0 + group, cols)
                let (s, zp) = asymmetricParameters(src + j0, j1 - j0)
                scales[r * groups + g] = s
                zeroPoints[r * groups + g] = UInt8(truncatingIfNeeded: zp)
                for j in j0..<j1 {
                    nibbles[j] = UInt8(truncatingIfNeeded: clamp(roundHalfEven(src[j] / s) &+ zp, 0, 15))
                }
            }
            pack(nibbles, cols, codes + r * bytesPerRow(cols: cols))
        }
    }

    public static func decodeAsymmetric(codes: UnsafePointer<UInt8>, scales: UnsafePointer<Float>,
                                        zeroPoints: UnsafePointer<UInt8>, cols: Int, rows: Range<Int>,
                                        group: Int, into out: UnsafeMutablePointer<Float>) {
        let groups = groupsPerRow(cols: cols, group: group)
        let q = UnsafeMutablePointer<UInt8>.allocate(capacity: max(cols, 1))
        defer { q.deallocate() }
        for r in rows {
            unpackUnsigned(codes + r * bytesPerRow(cols: cols), cols, q)
            let dst = out + r * cols
            for g in 0..<groups {
                let j0 = g * group, j1 = min(j0 + group, cols)
                let s = scales[r * groups + g]
                let zp = Int32(zeroPoints[r * groups + g])
                for j in j0..<j1 { dst[j] = Float(Int32(q[j]) &- zp) * s }
            }
        }
    }

    /// decode(encodeAsymmetric(w)) in place, bit-identical to the two.
    public static func fakeQuantAsymmetric(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>,
                                           group: Int) {
        let groups = groupsPerRow(cols: cols, group: group)
        for r in rows {
            let row = w + r * cols
            for g in 0..<groups {
                let j0 = g * group, j1 = min(j0 + group, cols)
                let (s, zp) = asymmetricParameters(row + j0, j1 - j0)
                for j in j0..<j1 {
                    let q = clamp(roundHalfEven(row[j] / s) &+ zp, 0, 15)
                    row[j] = Float(q &- zp) * s
                }
            }
        }
    }

    /// Scale and zero point of one asymmetric group (see the type's documentation).
    @inline(__always)
    static func asymmetricParameters(_ w: UnsafePointer<Float>, _ n: Int) -> (Float, Int32) {
        let (minW, maxW) = rangeWithZero(w, n)
        var s = (maxW - minW) / 15
        if !s.isFinite { s = maxW / 15 - minW / 15 }  // the range itself overflowed Float
        if !(s > 0) { return (1, 0) }
        return (s, clamp(roundHalfEven(-minW / s), 0, 15))
    }

    // MARK: nibble packing

    @inline(__always)
    static func pack(_ nibbles: UnsafePointer<UInt8>, _ cols: Int, _ dst: UnsafeMutablePointer<UInt8>) {
        let pairs = cols >> 1
        for k in 0..<pairs {
            dst[k] = nibbles[k &<< 1] | (nibbles[(k &<< 1) | 1] &<< 4)
        }
        if cols & 1 != 0 { dst[pairs] = nibbles[cols - 1] }
    }

    @inline(__always)
    static func unpackSigned(_ src: UnsafePointer<UInt8>, _ cols: Int, _ q: UnsafeMutablePointer<Int8>) {
        let pairs = cols >> 1
        for k in 0..<pairs {
            let b = src[k]
            q[k &<< 1] = Int8(bitPattern: b &<< 4) >> 4
            q[(k &<< 1) | 1] = Int8(bitPattern: b) >> 4
        }
        if cols & 1 != 0 { q[cols - 1] = Int8(bitPattern: src[pairs] &<< 4) >> 4 }
    }

    @inline(__always)
    static func unpackUnsigned(_ src: UnsafePointer<UInt8>, _ cols: Int, _ q: UnsafeMutablePointer<UInt8>) {
        let pairs = cols >> 1
        for k in 0..<pairs {
            let b = src[k]
            q[k &<< 1] = b & 0x0F
            q[(k &<< 1) | 1] = b >> 4
        }
        if cols & 1 != 0 { q[cols - 1] = src[pairs] & 0x0F }
    }
}
