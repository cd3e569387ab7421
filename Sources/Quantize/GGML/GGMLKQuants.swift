import Formats

/// Decoders of ggml's k-quants (Q2_K … Q6_K): super-blocks of 256 elements with an FP16 super
/// scale d (and, for Q2_K/Q4_K/Q5_K, an FP16 dmin for the minima) and small integer sub-block
/// scales. Each loop follows ggml's `dequantize_row_q*_K` order of operations: sub-block scale
/// dl = d · sc (and ml = dmin · m) once, then dl · q − ml per element, each a separately rounded
/// Float32 operation.
enum GGMLKQuants {
    static let qk = GGMLType.superBlock

    /// Q2_K (84 bytes): scales[16] (low nibble scale, high nibble min, per 16 elements), qs[64]
    /// (2-bit codes: byte l of each 32-byte half holds four elements 32 apart), d, dmin.
    static func decodeQ2_K(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<blocks {
            let x = b + i * 84, sc = x, d = ggmlHalf(x + 80), dmin = ggmlHalf(x + 82)
            var o = y + i * qk, q = x + 16, s = 0
            for _ in 0..<2 {
                for shift in stride(from: 0, to: 8, by: 2) {
                    for half in 0..<2 {
                        let c = sc[s]; s += 1
                        let dl = d * Float(c & 0x0F), ml = dmin * Float(c >> 4)
                        let qq = q + 16 * half
                        for l in 0..<16 { o[l] = dl * Float((qq[l] >> UInt8(shift)) & 3) - ml }
                        o += 16
                    }
                }
                q += 32
            }
        }
    }

    /// The sixteen 6-bit scales of a Q3_K block, unpacked from its 12 bytes (low 4 bits in bytes
    /// 0–7, high 2 bits in 8–11), as signed values − 32.
    @inline(__always)
    static func q3Scales(_ p: UnsafePointer<UInt8>, _ out: UnsafeMutablePointer<Int32>) {
        for k in 0..<16 {
            let low = k < 8 ? p[k] & 0x0F : p[k - 8] >> 4
            let high = (p[8 + (k & 3)] >> UInt8(2 * (k >> 2))) & 3
            out[k] = Int32(low | high << 4) &- 32
        }
    }

    /// Q3_K (110 bytes): hmask[32] (bit 2 of each code, inverted: a clear bit subtracts 4),
    /// qs[64] (low 2 bits), scales[12] (sixteen 6-bit scales), d.
    static func decodeQ3_K(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        let scales = UnsafeMutablePointer<Int32>.allocate(capacity: 16)
        defer { scales.deallocate() }
        for i in 0..<blocks {
            let x = b + i * 110, hm = x, d = ggmlHalf(x + 108)
            q3Scales(x + 96, scales)
            var o = y + i * qk, q = x + 32, s = 0, m: UInt8 = 1
            for _ in 0..<2 {
                for shift in stride(from: 0, to: 8, by: 2) {
                    for half in 0..<2 {
                        let dl = d * Float(scales[s]); s += 1
                        let qq = q + 16 * half, hh = hm + 16 * half
                        for l in 0..<16 {
                            let low = Int32((qq[l] >> UInt8(shift)) & 3)
                            o[l] = dl * Float(low &- (hh[l] & m != 0 ? 0 : 4))
                        }
                        o += 16
                    }
                    m <<= 1
                }
                q += 32
            }
        }
    }

    /// Scale and min j (0..<8) of a Q4_K / Q5_K block: 6 bits each, packed in 12 bytes.
    @inline(__always)
    static func scaleMin(_ j: Int, _ q: UnsafePointer<UInt8>) -> (Float, Float) {
        if j < 4 { return (Float(q[j] & 63), Float(q[j + 4] & 63)) }
        return (Float((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4)), Float((q[j + 4] >> 4) | ((q[j] >> 6) << 4)))
    }

    /// Q4_K (144 bytes): d, dmin, scales[12] (eight 6-bit scales and mins, one pair per 32
    /// elements), qs[128] (4-bit codes: 64 elements per 32 bytes, low nibbles first).
    static func decodeQ4_K(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<blocks {
            let x = b + i * 144, d = ggmlHalf(x), dmin = ggmlHalf(x + 2), sc = x + 4
            var o = y + i * qk, q = x + 16
            for pair in 0..<4 {
                let (s1, m1) = scaleMin(2 * pair, sc), (s2, m2) = scaleMin(2 * pair + 1, sc)
                let d1 = d * s1, mm1 = dmin * m1, d2 = d * s2, mm2 = dmin * m2
                for l in 0..<32 { o[l] = d1 * Float(q[l] & 0x0F) - mm1 }
                for l in 0..<32 { o[32 + l] = d2 * Float(q[l] >> 4) - mm2 }
                o += 64; q += 32
            }
        }
    }

    /// Q5_K (176 bytes): d, dmin, scales[12], qh[32] (bit 4 of the codes: bit 2p of byte l for
    /// element l of the p-th 64, low half; bit 2p + 1 for the high half), qs[128] as Q4_K.
    static func decodeQ5_K(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<blocks {
            let x = b + i * 176, d = ggmlHalf(x), dmin = ggmlHalf(x + 2), sc = x + 4, qh = x + 16
            var o = y + i * qk, ql = x + 48
            var u1: UInt8 = 1, u2: UInt8 = 2
            for pair in 0..<4 {
                let (s1, m1) = scaleMin(2 * pair, sc), (s2, m2) = scaleMin(2 * pair + 1, sc)
                let d1 = d * s1, mm1 = dmin * m1, d2 = d * s2, mm2 = dmin * m2
                for l in 0..<32 { o[l] = d1 * Float((ql[l] & 0x0F) + (qh[l] & u1 != 0 ? 16 : 0)) - mm1 }
                for l in 0..<32 { o[32 + l] = d2 * Float((ql[l] >> 4) + (qh[l] & u2 != 0 ? 16 : 0)) - mm2 }
                o += 64; ql += 32
                u1 &<<= 2; u2 &<<= 2
            }
        }
    }

    /// Q6_K (210 bytes): ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (signed bytes,
    /// one per 16 elements), d; value = d · scale · (q − 32), multiplied left to right.
    static func decodeQ6_K(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<blocks {
            let x = b + i * 210, d = ggmlHalf(x + 208)
            let scb = UnsafeRawPointer(x + 192).assumingMemoryBound(to: Int8.self)
            var o = y + i * qk, ql = x, qh = x + 128, sc = scb
            for _ in 0..<2 {
                for l in 0..<32 {
                    let s = l / 16
                    let q1 = Int32((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) &- 32
                    let q2 = Int32((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) &- 32
                    let q3 = Int32((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) &- 32
                    let q4 = Int32((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) &- 32
                    o[l] = d * Float(sc[s]) * Float(q1)
                    o[l + 32] = d * Float(sc[s + 2]) * Float(q2)
                    o[l + 64] = d * Float(sc[s + 4]) * Float(q3)
                    o[l + 96] = d * Float(sc[s + 6]) * Float(q4)
                }
                o += 128; ql += 64; qh += 32; sc += 8
            }
        }
    }
}
