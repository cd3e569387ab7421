import Formats

/// Decoders of ggml's i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_XS): super-blocks of
/// 256 elements whose codes index lattices of magnitudes (`GGMLGrids`) — 8 at a time for IQ2, 4
/// for IQ3 — with a separate sign per element, under an FP16 super scale and 4-bit sub-block
/// scales. Each loop keeps ggml's `dequantize_row_iq*` order of Float32 operations:
/// (db · grid) · ±1, where db is built as ggml builds it.
enum GGMLIQuants {
    static let qk = GGMLType.superBlock

    /// ggml's `ksigns_iq2xs`: 7 stored sign bits and an eighth that makes the count of negative
    /// signs even (bit 7 = parity of the other seven).
    static let ksigns: [UInt8] = (0..<128).map { i in UInt8(i) | UInt8(i.nonzeroBitCount & 1) << 7 }

    /// Eight values of one lattice entry times db, each negated where bit j of `signs` is set.
    @inline(__always)
    static func put8(_ o: UnsafeMutablePointer<Float>, _ db: Float, _ grid: UnsafePointer<UInt8>, _ signs: UInt8) {
        // ±1 from the bit as arithmetic, not a branch, so the eight lanes vectorize.
        for j in 0..<8 { o[j] = db * Float(grid[j]) * Float(1 &- 2 &* Int32((signs >> UInt8(j)) & 1)) }
    }

    /// IQ2_XXS (66 bytes): d, then per 32 elements two UInt32s: four 8-bit indices into the
    /// 256-entry grid, and 4 × 7 sign bits plus a 4-bit scale in the top bits;
    /// db = d · (0.5 + scale) · 0.25.
    static func decodeIQ2_XXS(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        GGMLGrids.iq2xxs.withUnsafeBufferPointer { gb in
            ksigns.withUnsafeBufferPointer { kb in
                let grid = gb.baseAddress!, ks = kb.baseAddress!
                for i in 0..<blocks {
                    let x = b + i * 66, d = ggmlHalf(x)
                    var o = y + i * qk
                    for ib in 0..<8 {
                        let q = x + 2 + 8 * ib
                        let aux1 = ggmlU32(q + 4)
                        let db = d * (0.5 + Float(aux1 >> 28)) * 0.25
                        for l in 0..<4 {
                            put8(o, db, grid + 8 * Int(q[l]), ks[Int((aux1 >> UInt32(7 * l)) & 127)])
                            o += 8
                        }
                    }
                }
            }
        }
    }

    /// IQ2_XS (74 bytes): d, qs[32] UInt16 (9-bit index into the 512-entry grid, 7 sign bits),
    /// scales[8] (two 4-bit scales per 32 elements, one per 16).
    static func decodeIQ2_XS(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        GGMLGrids.iq2xs.withUnsafeBufferPointer { gb in
            ksigns.withUnsafeBufferPointer { kb in
                let grid = gb.baseAddress!, ks = kb.baseAddress!
                for i in 0..<blocks {
                    let x = b + i * 74, d = ggmlHalf(x), scales = x + 66
                    var o = y + i * qk
                    for ib in 0..<8 {
                        let db0 = d * (0.5 + Float(scales[ib] & 0x0F)) * 0.25
                        let db1 = d * (0.5 + Float(scales[ib] >> 4)) * 0.25
                        for l in 0..<4 {
                            let v = Int(ggmlU16(x + 2 + 2 * (4 * ib + l)))
                            put8(o, l < 2 ? db0 : db1, grid + 8 * (v & 511), ks[v >> 9])
                            o += 8
                        }
                    }
                }
            }
        }
    }

    /// IQ2_S (82 bytes): d, qs[64] (32 low index bytes, then 32 sign bytes), qh[8] (2 high index
    /// bits per 8 elements), scales[8]; indices into the 1024-entry grid.
    static func decodeIQ2_S(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        GGMLGrids.iq2s.withUnsafeBufferPointer { gb in
            let grid = gb.baseAddress!
            for i in 0..<blocks {
                let x = b + i * 82, d = ggmlHalf(x), qh = x + 66, scales = x + 74
                var o = y + i * qk, qs = x + 2, signs = x + 34
                for ib in 0..<8 {
                    let db0 = d * (0.5 + Float(scales[ib] & 0x0F)) * 0.25
                    let db1 = d * (0.5 + Float(scales[ib] >> 4)) * 0.25
                    for l in 0..<4 {
                        let idx = Int(qs[l]) | (Int(qh[ib]) << (8 - 2 * l)) & 0x300
                        put8(o, l < 2 ? db0 : db1, grid + 8 * idx, signs[l])
                        o += 8
                    }
                    qs += 4; signs += 4
                }
            }
        }
    }

    /// Two IQ3 lattice entries (4 values each) times db, with the eight sign bits of `signs`.
    @inline(__always)
    static func put4x2(_ o: UnsafeMutablePointer<Float>, _ db: Float, _ g1: UnsafePointer<UInt8>, _ g2: UnsafePointer<UInt8>,
                       _ signs: UInt8) {
        for j in 0..<4 {
            o[j] = db * Float(g1[j]) * Float(1 &- 2 &* Int32((signs >> UInt8(j)) & 1))
            o[j + 4] = db * Float(g2[j]) * Float(1 &- 2 &* Int32((signs >> UInt8(j + 4)) & 1))
        }
    }

    /// IQ3_XXS (98 bytes): d, qs[64] (8-bit indices into the 256-entry grid, 4 values each), then
    /// per 32 elements a UInt32 of 4 × 7 sign bits and a 4-bit scale; db = d · (0.5 + scale) · 0.5.
    static func decodeIQ3_XXS(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        GGMLGrids.iq3xxs.withUnsafeBufferPointer { gb in
            ksigns.withUnsafeBufferPointer { kb in
                let grid = gb.baseAddress!, ks = kb.baseAddress!
                for i in 0..<blocks {
                    let x = b + i * 98, d = ggmlHalf(x), ss = x + 66
                    var o = y + i * qk, qs = x + 2
                    for ib in 0..<8 {
                        let aux = ggmlU32(ss + 4 * ib)
                        let db = d * (0.5 + Float(aux >> 28)) * 0.5
                        for l in 0..<4 {
                            put4x2(o, db, grid + 4 * Int(qs[2 * l]), grid + 4 * Int(qs[2 * l + 1]),
                                   ks[Int((aux >> UInt32(7 * l)) & 127)])
                            o += 8
                        }
                        qs += 8
                    }
                }
            }
        }
    }

    /// IQ3_S (110 bytes): d, qs[64] (low 8 index bits), qh[8] (ninth index bit), signs[32],
    /// scales[4] (4-bit, one per 32 elements); indices into the 512-entry grid; db = d · (1 + 2·scale).
    static func decodeIQ3_S(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        GGMLGrids.iq3s.withUnsafeBufferPointer { gb in
            let grid = gb.baseAddress!
            for i in 0..<blocks {
                let x = b + i * 110, d = ggmlHalf(x), scales = x + 106
                var o = y + i * qk, qs = x + 2, qh = x + 66, signs = x + 74
                for ib in stride(from: 0, to: 8, by: 2) {
                    let db1 = d * Float(1 + 2 * Int32(scales[ib / 2] & 0x0F))
                    let db2 = d * Float(1 + 2 * Int32(scales[ib / 2] >> 4))
                    for k in 0..<2 {
                        let db = k == 0 ? db1 : db2, h = Int(qh[k])
                        for l in 0..<4 {
                            let i1 = Int(qs[2 * l]) | ((h << (8 - 2 * l)) & 256)
                            let i2 = Int(qs[2 * l + 1]) | ((h << (7 - 2 * l)) & 256)
                            put4x2(o, db, grid + 4 * i1, grid + 4 * i2, signs[l])
                            o += 8
                        }
                        qs += 8; signs += 4
                    }
                    qh += 2
                }
            }
        }
    }

    /// IQ4_XS (136 bytes): d, scales_h (UInt16: 2 high bits of each 6-bit scale), scales_l[4]
    /// (4 low bits), qs[128] (IQ4_NL grid indices, 32 elements per 16 bytes, j / j + 16 nibbles);
    /// dl = d · (scale − 32), value = dl · grid[q].
    static func decodeIQ4_XS(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        let t: [Float] = IQ4_NLBlock.values.map { Float($0) }
        t.withUnsafeBufferPointer { tb in
            let t = tb.baseAddress!
            for i in 0..<blocks {
                let x = b + i * 136, d = ggmlHalf(x), sh = Int32(ggmlU16(x + 2)), sl = x + 4
                var o = y + i * qk, qs = x + 8
                for ib in 0..<8 {
                    let ls = Int32((sl[ib / 2] >> UInt8(4 * (ib % 2))) & 0x0F) | (((sh >> Int32(2 * ib)) & 3) << 4)
                    let dl = d * Float(ls &- 32)
                    for j in 0..<16 {
                        o[j] = dl * t[Int(qs[j] & 0x0F)]
                        o[j + 16] = dl * t[Int(qs[j] >> 4)]
                    }
                    o += 32; qs += 16
                }
            }
        }
    }
}

/// The i-quant lattices as byte arrays, decoded once from `GGMLGridHex`.
enum GGMLGrids {
    static let iq2xxs = bytes(GGMLGridHex.iq2xxs)
    static let iq2xs = bytes(GGMLGridHex.iq2xs)
    static let iq2s = bytes(GGMLGridHex.iq2s)
    static let iq3xxs = bytes(GGMLGridHex.iq3xxs)
    static let iq3s = bytes(GGMLGridHex.iq3s)

    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = [], high: UInt8? = nil
        out.reserveCapacity(hex.utf8.count / 2)
        for c in hex.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
            default: continue   // line breaks and indentation of the literal
            }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return out
    }
}
