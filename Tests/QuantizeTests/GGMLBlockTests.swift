import XCTest
import Formats
@testable import Quantize
import TestSupport

/// ggml's block formats: hand-worked blocks with their exact bytes (ties, all-zero blocks,
/// negative maxima), the traits table, and the properties every codec keeps (decode ∘ encode =
/// fakeQuant, the grid reproduces round-to-nearest, partial blocks). The comparison with gguf-py
/// is GGUFCrossCheckTests.
final class GGMLBlockTests: XCTestCase {
    /// Encodes one row with the named scheme and returns the block bytes.
    func encode(_ scheme: String, _ x: [Float]) -> [UInt8] {
        let codec = QuantScheme(scheme)!.codec
        var out = [UInt8](repeating: 0xEE, count: codec.codeBytesPerRow(cols: x.count))
        x.withUnsafeBufferPointer { w in
            out.withUnsafeMutableBytes { c in
                codec.encode(w.baseAddress!, cols: x.count, rows: 0..<1, rowScale: 1, codes: c.baseAddress!, scales: nil, zeroPoints: nil)
            }
        }
        return out
    }

    func decode(_ scheme: String, _ bytes: [UInt8], cols: Int) -> [Float] {
        let codec = QuantScheme(scheme)!.codec
        var out = [Float](repeating: .nan, count: cols)
        bytes.withUnsafeBytes { c in
            codec.decode(codes: c.baseAddress!, scales: nil, zeroPoints: nil, rowScale: 1, cols: cols, rows: 0..<1, into: &out)
        }
        return out
    }

    /// 16 nibble bytes of a 32-block from its 32 codes: element j low, j + 16 high.
    func nibbles(_ codes: [UInt8]) -> [UInt8] { (0..<16).map { codes[$0] | codes[$0 + 16] << 4 } }

    func testTraitsTableMatchesGGML() {
        // (id, name, block, bytes) as ggml.c's type_traits and gguf-py's GGML_QUANT_SIZES give them.
        let expected: [(UInt32, String, Int, Int)] = [
            (0, "f32", 1, 4), (1, "f16", 1, 2), (2, "q4_0", 32, 18), (3, "q4_1", 32, 20), (6, "q5_0", 32, 22),
            (7, "q5_1", 32, 24), (8, "q8_0", 32, 34), (9, "q8_1", 32, 40), (10, "q2_K", 256, 84), (11, "q3_K", 256, 110),
            (12, "q4_K", 256, 144), (13, "q5_K", 256, 176), (14, "q6_K", 256, 210), (15, "q8_K", 256, 292),
            (16, "iq2_xxs", 256, 66), (17, "iq2_xs", 256, 74), (18, "iq3_xxs", 256, 98), (19, "iq1_s", 256, 50),
            (20, "iq4_nl", 32, 18), (21, "iq3_s", 256, 110), (22, "iq2_s", 256, 82), (23, "iq4_xs", 256, 136),
            (24, "i8", 1, 1), (25, "i16", 1, 2), (26, "i32", 1, 4), (27, "i64", 1, 8), (28, "f64", 1, 8),
            (29, "iq1_m", 256, 56), (30, "bf16", 1, 2), (34, "tq1_0", 256, 54), (35, "tq2_0", 256, 66),
            (39, "mxfp4", 32, 17), (40, "nvfp4", 64, 36), (41, "q1_0", 128, 18),
        ]
        XCTAssertEqual(GGMLType.allCases.count, expected.count)
        for (id, name, block, bytes) in expected {
            let t = GGMLType(rawValue: id)!
            XCTAssertEqual(t.name, name); XCTAssertEqual(t.blockSize, block, name); XCTAssertEqual(t.typeSize, bytes, name)
            XCTAssertEqual(GGMLType(name: name.uppercased()), t)
        }
        XCTAssertNil(GGMLType(rawValue: 4))
        XCTAssertEqual(GGMLType.q4_K.rowBytes(cols: 2048), 8 * 144)
        XCTAssertNil(GGMLType.q4_K.rowBytes(cols: 2688), "2688 is not a whole number of 256-blocks: no silent fallback")
        XCTAssertEqual(GGMLType.q8_0.rowBytes(cols: 2688), 84 * 34)
    }

    func testSchemeNamesAndSizes() {
        for (name, bits, bytes) in [("q8_0", 8, 34), ("q4_0", 4, 18), ("q4_1", 4, 20), ("q5_0", 5, 22), ("q5_1", 5, 24),
                                    ("iq4_nl", 4, 18), ("gguf-mxfp4", 4, 17)] {
            let s = QuantScheme(name)!
            XCTAssertEqual(s.description, name)
            XCTAssertEqual(s.payloadBits, bits, name)
            XCTAssertEqual(s.codec.sections(rows: 3, cols: 64, rowBlocks: 1), [SectionSpec(name: "codes", element: .u8, count: 3 * 2 * bytes)])
            XCTAssertEqual(s.bitsPerWeight(rows: 4, cols: 64), Double(bytes * 8) / 32, name)
        }
        XCTAssertEqual(QuantScheme("Q4_0")?.description, "q4_0")
        XCTAssertNil(QuantScheme("q4_k"), "k-quants are decode-only")
        XCTAssertNotEqual(QuantScheme("gguf-mxfp4"), QuantScheme("mxfp4"))
    }

    /// Q8_0: d = amax / 127 = 1 exactly; codes round half away from zero (C roundf).
    func testQ8_0HandWorked() {
        var x = [Float](repeating: 0, count: 32)
        x[0] = 127; x[1] = -63.5; x[2] = 0.5; x[3] = -0.5; x[4] = 2.5; x[5] = -127; x[6] = 1.49
        var want: [UInt8] = [0x00, 0x3C]   // FP16 1.0
        let q: [Int8] = [127, -64, 1, -1, 3, -127, 1] + [Int8](repeating: 0, count: 25)
        want += q.map { UInt8(bitPattern: $0) }
        XCTAssertEqual(encode("q8_0", x), want)
        XCTAssertEqual(decode("q8_0", want, cols: 32), q.map { Float($0) })
        // All zero: d = 0, codes 0, decodes to +0.
        XCTAssertEqual(encode("q8_0", [Float](repeating: 0, count: 32)), [UInt8](repeating: 0, count: 34))
    }

    /// Q4_0: the signed extreme m (first on ties) gets code 0; d = m / −8; halves round up;
    /// +8·|d| on the far side clips to code 15.
    func testQ4_0HandWorked() {
        var x = [Float](repeating: 0, count: 32)
        x[0] = -8; x[1] = 0.5; x[2] = -0.5; x[3] = 1.49; x[5] = 8; x[16] = 7; x[17] = -7.5; x[31] = 3.5
        // d = −8 / −8 = 1; code = min(15, trunc(x + 8.5)).
        var codes = [UInt8](repeating: 8, count: 32)
        codes[0] = 0; codes[1] = 9; codes[2] = 8; codes[3] = 9; codes[5] = 15; codes[16] = 15; codes[17] = 1; codes[31] = 12
        let want: [UInt8] = [0x00, 0x3C] + nibbles(codes)
        XCTAssertEqual(encode("q4_0", x), want)
        let v = decode("q4_0", want, cols: 32)
        XCTAssertEqual(v[0], -8); XCTAssertEqual(v[1], 1); XCTAssertEqual(v[2], 0); XCTAssertEqual(v[5], 7); XCTAssertEqual(v[17], -7)
        // Positive extreme: d = 8 / −8 = −1, so the extreme is still code 0 and decodes to +8.
        var y = [Float](repeating: 0, count: 32)
        y[3] = 8; y[4] = -8; y[6] = 0.5
        let b = encode("q4_0", y)
        XCTAssertEqual(Array(b[0..<2]), [0x00, 0xBC])   // FP16 −1.0
        XCTAssertEqual(b[2 + 3] & 0x0F, 0); XCTAssertEqual(b[2 + 4] & 0x0F, 15); XCTAssertEqual(b[2 + 6] & 0x0F, 8)
        XCTAssertEqual(decode("q4_0", b, cols: 32)[3], 8)
        // All zero: d = 0 / −8 = −0 (FP16 0x8000) and codes 8; every element decodes to 0 · −0 = −0, as ggml's.
        let z = encode("q4_0", [Float](repeating: 0, count: 32))
        XCTAssertEqual(z, [0x00, 0x80] + [UInt8](repeating: 0x88, count: 16))
        XCTAssertEqual(decode("q4_0", z, cols: 32).map(\.bitPattern), [UInt32](repeating: 0x8000_0000, count: 32))
    }

    /// Q4_1: min −1, max 14 → d = 1, m = −1; code = trunc(x + 1 + 0.5).
    func testQ4_1HandWorked() {
        var x = [Float](repeating: 0, count: 32)
        x[0] = -1; x[1] = 14; x[2] = 0.5; x[3] = 2.49; x[20] = 13.5
        var codes = [UInt8](repeating: 1, count: 32)
        codes[0] = 0; codes[1] = 15; codes[2] = 2; codes[3] = 3; codes[20] = 15
        let want: [UInt8] = [0x00, 0x3C, 0x00, 0xBC] + nibbles(codes)
        XCTAssertEqual(encode("q4_1", x), want)
        XCTAssertEqual(decode("q4_1", want, cols: 32)[2], 1)
        // A constant block: d = 0, all codes 0, decodes to m.
        let c = encode("q4_1", [Float](repeating: 3, count: 32))
        XCTAssertEqual(c, [0x00, 0x00, 0x00, 0x42] + [UInt8](repeating: 0, count: 16))
        XCTAssertEqual(decode("q4_1", c, cols: 32), [Float](repeating: 3, count: 32))
    }

    /// Q5_0: m = −16 → d = 1; code = min(31, trunc(x + 16.5)); bit 4 of code j goes to bit j of qh.
    func testQ5_0HandWorked() {
        var x = [Float](repeating: 0, count: 32)
        x[0] = -16; x[1] = 15; x[2] = 16; x[3] = -0.5; x[17] = 0.5; x[30] = -1
        var codes = [UInt8](repeating: 16, count: 32)
        codes[0] = 0; codes[1] = 31; codes[2] = 31; codes[3] = 16; codes[17] = 17; codes[30] = 15
        var qh: UInt32 = 0
        for j in 0..<32 where codes[j] & 16 != 0 { qh |= 1 << UInt32(j) }
        let want: [UInt8] = [0x00, 0x3C] + withUnsafeBytes(of: qh.littleEndian, Array.init) + nibbles(codes.map { $0 & 15 })
        XCTAssertEqual(encode("q5_0", x), want)
        XCTAssertEqual(qh, 0xBFFF_FFFE)
        let v = decode("q5_0", want, cols: 32)
        XCTAssertEqual(v[0], -16); XCTAssertEqual(v[2], 15); XCTAssertEqual(v[17], 1); XCTAssertEqual(v[30], -1)
    }

    /// Q5_1: min −1, max 30 → d = 1; code = trunc(x + 1.5).
    func testQ5_1HandWorked() {
        var x = [Float](repeating: 0, count: 32)
        x[0] = -1; x[1] = 30; x[2] = 0.5; x[18] = 14.5
        var codes = [UInt8](repeating: 1, count: 32)
        codes[0] = 0; codes[1] = 31; codes[2] = 2; codes[18] = 16
        var qh: UInt32 = 0
        for j in 0..<32 where codes[j] & 16 != 0 { qh |= 1 << UInt32(j) }
        let want: [UInt8] = [0x00, 0x3C, 0x00, 0xBC] + withUnsafeBytes(of: qh.littleEndian, Array.init) + nibbles(codes.map { $0 & 15 })
        XCTAssertEqual(encode("q5_1", x), want)
        XCTAssertEqual(decode("q5_1", want, cols: 32)[18], 15)
    }

    /// IQ4_NL: codes under d₀ = m / −127, then d refitted by least squares with weights x².
    func testIQ4_NLHandWorked() {
        // One element 127, the rest 0: d₀ = −1, code 0 (−127) for it and index 8 (the grid's 1, nearest
        // 0) for the zeros; d = Σ x²·q·x / Σ x²·q² = −127⁴ / 127⁴ = −1 exactly. Zeros decode to −1·1.
        var x = [Float](repeating: 0, count: 32)
        x[0] = 127
        var codes = [UInt8](repeating: 8, count: 32)
        codes[0] = 0
        let want: [UInt8] = [0x00, 0xBC] + nibbles(codes)
        XCTAssertEqual(encode("iq4_nl", x), want)
        let v = decode("iq4_nl", want, cols: 32)
        XCTAssertEqual(v[0], 127); XCTAssertEqual(v[1], -1)
        // Ties go to the upper grid point: −115.5 is midway between −127 and −104 → index 1;
        // 7 is midway between 1 and 13 → index 9; just below it → index 8.
        XCTAssertEqual(IQ4_NLBlock.nearestIndex(-115.5), 1)
        XCTAssertEqual(IQ4_NLBlock.nearestIndex(7), 9)
        XCTAssertEqual(IQ4_NLBlock.nearestIndex(Float(7).nextDown), 8)
        XCTAssertEqual(IQ4_NLBlock.nearestIndex(-500), 0)
        XCTAssertEqual(IQ4_NLBlock.nearestIndex(500), 15)
        XCTAssertLessThan(IQ4_NLBlock.nearestIndex(.nan), 16, "NaN must not trap")
        for (k, v) in IQ4_NLBlock.values.enumerated() { XCTAssertEqual(IQ4_NLBlock.nearestIndex(Float(v)), k) }
        // A block with a tie inside: m = 127 at x[0] (d₀ = −1), x[1] = 115.5 → w·(1/d₀) = −115.5 → index 1.
        var t = [Float](repeating: 0, count: 32)
        t[0] = 127; t[1] = 115.5
        let b = encode("iq4_nl", t)
        XCTAssertEqual(b[2], 0x80); XCTAssertEqual(b[3], 0x81)
        // d = (127²·(−127)·127 + 115.5²·(−104)·115.5) / (127²·127² + 115.5²·104²), in Float32, as FP16.
        let w0: Float = 127 * 127, w1: Float = 115.5 * 115.5
        var sqx: Float = 0, sq2: Float = 0
        sqx += w0 * -127 * 127; sq2 += w0 * -127 * -127
        sqx += w1 * -104 * 115.5; sq2 += w1 * -104 * -104
        for _ in 2..<32 { sqx += 0; sq2 += 0 }
        XCTAssertEqual(UInt16(b[0]) | UInt16(b[1]) << 8, Float16(sqx / sq2).bitPattern)
        // All zero (max |w| < 1e-15): d = 0, codes 8, decodes to +0.
        let z = encode("iq4_nl", [Float](repeating: 1e-16, count: 32))
        XCTAssertEqual(z, [0, 0] + [UInt8](repeating: 0x88, count: 16))
        XCTAssertEqual(decode("iq4_nl", z, cols: 32).map(\.bitPattern), [UInt32](repeating: 0, count: 32))
    }

    /// ggml's MXFP4: ties go to the smaller magnitude, small negatives to +0, exponent from log2f —
    /// each a difference from our OCP `mxfp4` scheme.
    func testGGUFMXFP4HandWorkedAndDifferencesFromOurMXFP4() {
        var x = [Float](repeating: 0, count: 32)
        x[0] = 6; x[1] = 0.75; x[2] = 2.5; x[3] = -0.1; x[4] = 5; x[5] = -1.75; x[16] = -6; x[17] = 0.25
        // amax 6 → e = floor(log2 6) − 2 + 127 = 127, half scale 0.5; kvalues index: 6→7, 0.75→1 (0.5), 2.5→4 (2),
        // −0.1→0 (+0), 5→6 (4), −1.75→11 (−1.5, tie with −2 goes to the smaller magnitude), −6→15, 0.25→0.
        var codes = [UInt8](repeating: 0, count: 32)
        codes[0] = 7; codes[1] = 1; codes[2] = 4; codes[4] = 6; codes[5] = 11; codes[16] = 15
        let want: [UInt8] = [127] + nibbles(codes)
        XCTAssertEqual(encode("gguf-mxfp4", x), want)
        let v = decode("gguf-mxfp4", want, cols: 32)
        XCTAssertEqual(v[1], 0.5); XCTAssertEqual(v[2], 2); XCTAssertEqual(v[3].bitPattern, 0); XCTAssertEqual(v[5], -1.5)
        // Our OCP mxfp4 rounds the same ties to even: 0.75 → 1, −1.75 → −2, 5 → 4, and −0.1 → −0.
        let ours = QuantScheme("mxfp4")!.codec
        var o = [Float](repeating: 0, count: 32)
        x.withUnsafeBufferPointer { w in o.withUnsafeMutableBufferPointer { p in
            p.baseAddress!.update(from: w.baseAddress!, count: 32)
            ours.fakeQuant(p.baseAddress!, cols: 32, rows: 0..<1, rowScale: 1)
        } }
        XCTAssertEqual(o[1], 1); XCTAssertEqual(o[5], -2); XCTAssertEqual(o[4], 4); XCTAssertEqual(o[3].bitPattern, (-Float(0)).bitPattern)
        // log2f of an amax just below 2^20 rounds to 20: ggml's exponent is one above the float's.
        XCTAssertEqual(MXFP4Block.exponent(amax: Float(1 << 20).nextDown), 145)
        XCTAssertEqual(MXFP4Codec.scaleByte(absMax: Float(1 << 20).nextDown), 144)
        XCTAssertEqual(MXFP4Block.exponent(amax: 0), 0)
        XCTAssertEqual(MXFP4Block.exponent(amax: 1e-40), 0)
        // ggml's half scale: 2^(e − 128), subnormal below e = 2, and e = 255 is 2^127 (not NaN).
        XCTAssertEqual(MXFP4Block.halfScale(0), Float(sign: .plus, exponent: -128, significand: 1))
        XCTAssertEqual(MXFP4Block.halfScale(1), Float(sign: .plus, exponent: -127, significand: 1))
        XCTAssertEqual(MXFP4Block.halfScale(255), Float(sign: .plus, exponent: 127, significand: 1))
    }

    static let encodable = ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "gguf-mxfp4"]

    /// decode(encode(w)) = fakeQuant(w) bit for bit, for whole and partial last blocks; the grid
    /// (what GPTQ and clip search use) writes the same bytes as encode.
    func testRoundTripsFakeQuantAndGridAgree() {
        for name in Self.encodable {
            let codec = QuantScheme(name)!.codec
            for cols in [96, 80, 7] {
                let rows = 5
                let w = randomMatrix(rows: rows, cols: cols, seed: 21)
                var codes = [UInt8](repeating: 0xAA, count: rows * codec.codeBytesPerRow(cols: cols))
                var dec = [Float](repeating: .nan, count: rows * cols)
                var fq = w
                w.withUnsafeBufferPointer { wp in codes.withUnsafeMutableBytes { c in
                    codec.encode(wp.baseAddress!, cols: cols, rows: 0..<rows, rowScale: 1, codes: c.baseAddress!, scales: nil, zeroPoints: nil)
                } }
                codes.withUnsafeBytes { c in
                    codec.decode(codes: c.baseAddress!, scales: nil, zeroPoints: nil, rowScale: 1, cols: cols, rows: 0..<rows, into: &dec)
                }
                fq.withUnsafeMutableBufferPointer { codec.fakeQuant($0.baseAddress!, cols: cols, rows: 0..<rows, rowScale: 1) }
                XCTAssertEqual(dec.map(\.bitPattern), fq.map(\.bitPattern), "\(name) cols \(cols)")
                XCTAssertTrue(dec.allSatisfy(\.isFinite), name)

                // Through the grid, one group at a time, as the calibrated encoders store codes.
                let q = GridQuantizer(scheme: QuantScheme(name)!, cols: cols)!
                var viaGrid = [UInt8](repeating: 0xAA, count: codes.count)
                w.withUnsafeBufferPointer { wp in viaGrid.withUnsafeMutableBytes { c in
                    for r in 0..<rows {
                        q.clearRow(r, codes: c.baseAddress!)
                        for g in 0..<((cols + 31) / 32) {
                            let j0 = g * 32, n = min(32, cols - j0)
                            let p = q.parameters(wp.baseAddress! + r * cols + j0, n)
                            q.storeParameters(p, row: r, group: g, codes: c.baseAddress!, scales: nil, zeroPoints: nil)
                            for j in j0..<(j0 + n) { q.store(q.quantize(wp[r * cols + j], p).0, row: r, col: j, codes: c.baseAddress!) }
                        }
                    }
                } }
                XCTAssertEqual(viaGrid, codes, "\(name) cols \(cols)")
            }
        }
    }

    /// Non-finite inputs never trap and decode to finite values or are refused upstream; the codec
    /// itself only promises not to crash.
    func testNonFiniteInputDoesNotTrap() {
        for name in Self.encodable {
            var x = (0..<32).map { Float($0) - 16 }
            x[3] = .nan; x[9] = .infinity
            _ = encode(name, x)
        }
    }

    /// Decoding a whole tensor by rows equals decoding its blocks one by one.
    func testDecodeRowsAndTheDecodableList() {
        XCTAssertTrue(GGMLDequantize.supports(.q4_K))
        XCTAssertTrue(GGMLDequantize.supports(.iq2_xxs))
        XCTAssertFalse(GGMLDequantize.supports(.iq1_s))
        var g = SplitMix64(seed: 5)
        let bytes = (0..<(2 * 144 * 2)).map { _ in UInt8.random(in: 0...255, using: &g) }
        var safe = bytes
        for b in 0..<4 { safe[b * 144 + 1] = 0x3C; safe[b * 144 + 3] = 0x3C }   // finite d, dmin
        var rows = [Float](repeating: 0, count: 2 * 512), blocks = rows
        safe.withUnsafeBytes { p in
            GGMLDequantize.decodeRows(.q4_K, p.baseAddress!, cols: 512, rows: 0..<2, into: &rows)
            GGMLDequantize.decode(.q4_K, p.baseAddress!, blocks: 4, into: &blocks)
        }
        XCTAssertEqual(rows, blocks)
    }
}

extension GGMLBlockTests {
    /// ggml's `best_index_int8`, transcribed as its definition: binary search, then the nearer of
    /// the two neighbours in Float32, the upper on a tie.
    static func bestIndexInt8(_ x: Float) -> Int {
        let v = IQ4_NLBlock.values.map { Float($0) }
        if x <= v[0] { return 0 }
        if x >= v[15] { return 15 }
        var ml = 0, mu = 15
        while mu - ml > 1 {
            let mav = (ml + mu) / 2
            if x < v[mav] { mu = mav } else { ml = mav }
        }
        return x - v[mu - 1] < v[mu] - x ? mu - 1 : mu
    }

    /// The midpoint count equals the binary search on every midpoint, 64 floats either side of
    /// each, every grid value's neighbourhood, and a million random values across and beyond the grid.
    func testNearestIndexEqualsGGMLBinarySearch() {
        let v = IQ4_NLBlock.values.map { Float($0) }
        var probes: [Float] = []
        for k in 0..<15 {
            for c in [(v[k] + v[k + 1]) / 2, v[k], v[k + 1]] {
                var up = c, down = c
                for _ in 0..<64 { probes += [up, down]; up = up.nextUp; down = down.nextDown }
            }
        }
        var g = SplitMix64(seed: 99)
        for _ in 0..<1_000_000 { probes.append(Float.random(in: -200...200, using: &g)) }
        probes += [0, -0.0, 1e-30, -1e-30, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .infinity, -.infinity]
        for x in probes where IQ4_NLBlock.nearestIndex(x) != Self.bestIndexInt8(x) {
            XCTFail("x = \(x): \(IQ4_NLBlock.nearestIndex(x)) vs ggml \(Self.bestIndexInt8(x))"); break
        }
    }
}
