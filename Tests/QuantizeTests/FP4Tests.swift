import XCTest
@testable import Quantize
import TestSupport

/// E2M1 elements, MXFP4 and NVFP4: every code, every rounding midpoint, the published scale
/// computations on hand-worked examples, and round trips.
final class FP4Tests: XCTestCase {
    /// E2M1 from its definition: (-1)^s · 2^(e-1) · (1 + m/2), subnormal (e = 0) m · 0.5.
    static func definedValue(_ c: Int) -> Float {
        let s = (c >> 3) & 1, e = (c >> 1) & 3, m = c & 1
        let magnitude: Float = e == 0 ? Float(m) * 0.5 : (1 + Float(m) / 2) * Float(1 << (e - 1))
        return s == 1 ? -magnitude : magnitude
    }

    func testAllSixteenCodesDecodeToThePublishedValues() {
        let published: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]
        for c in 0..<16 {
            XCTAssertEqual(E2M1.decode(UInt8(c)).bitPattern, published[c].bitPattern, "code \(c)")
            XCTAssertEqual(E2M1.decode(UInt8(c)).bitPattern, Self.definedValue(c).bitPattern, "code \(c)")
            // Every code is its own value's code (−0 → 8: the sign of zero is kept only for x < 0).
            if c != 8 { XCTAssertEqual(E2M1.encode(published[c]), UInt8(c), "code \(c)") }
        }
        XCTAssertEqual(E2M1.encode(-0.0), 0)
    }

    /// Ties to the even code (mantissa bit 0) at every midpoint; just below and just above go to
    /// the nearer code. The lead's list: 0.25→0, 0.75→1, 1.25→1, 1.75→2, 2.5→2, 3.5→4, 5→4.
    func testRoundHalfToEvenAtEveryMidpoint() {
        let mids: [(Float, UInt8, UInt8, UInt8)] = [   // midpoint, below, tie, above (codes)
            (0.25, 0, 0, 1), (0.75, 1, 2, 2), (1.25, 2, 2, 3), (1.75, 3, 4, 4),
            (2.5, 4, 4, 5), (3.5, 5, 6, 6), (5, 6, 6, 7),
        ]
        for (m, below, tie, above) in mids {
            XCTAssertEqual(E2M1.encode(m), tie, "tie \(m)")
            XCTAssertEqual(E2M1.encode(m.nextDown), below, "below \(m)")
            XCTAssertEqual(E2M1.encode(m.nextUp), above, "above \(m)")
            XCTAssertEqual(E2M1.encode(-m), tie | 8, "tie \(-m)")
            XCTAssertEqual(E2M1.encode(-m.nextDown), below | 8)
            XCTAssertEqual(E2M1.encode(-m.nextUp), above | 8)
        }
        XCTAssertEqual([Float(0.25), 0.75, 1.25, 1.75, 2.5, 3.5, 5].map { E2M1.decode(E2M1.encode($0)) }, [0, 1, 1, 2, 2, 4, 4])
        // Saturation, and the sign of what rounds to zero.
        XCTAssertEqual(E2M1.encode(6.5), 7)
        XCTAssertEqual(E2M1.encode(1e30), 7)
        XCTAssertEqual(E2M1.encode(.infinity), 7)
        XCTAssertEqual(E2M1.encode(-.infinity), 15)
        XCTAssertEqual(E2M1.encode(-0.1), 8)
        XCTAssertEqual(E2M1.encode(.nan), 0)
    }

    /// ModelOpt's `_cast_fp4`: searchsorted (left) over the bounds, plus one on the odd bounds
    /// [0.75, 1.75, 3.5], sign bit = x < 0. Ours agrees on random values and all the bounds.
    func testEncodeMatchesModelOptCastFP4() {
        let bounds: [Float] = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5]
        func modelOpt(_ x: Float) -> UInt8 {
            let a = abs(x)
            let ord = bounds.filter { $0 < a }.count
            let odd = [Float(0.75), 1.75, 3.5].contains(a) ? 1 : 0
            return UInt8((x < 0 ? 8 : 0) + ord + odd)
        }
        var g = SplitMix64(offsetSeed: 41)
        var xs: [Float] = bounds + bounds.map { -$0 } + bounds.map(\.nextUp) + bounds.map(\.nextDown) + [0, 6, 7, -7]
        for _ in 0..<20000 { xs.append(g.uniform(-8, 8)) }
        for x in xs { XCTAssertEqual(E2M1.encode(x), modelOpt(x), "\(x)") }
    }

    func testE8M0Values() {
        XCTAssertEqual(E2M1.e8m0Value(127), 1)
        XCTAssertEqual(E2M1.e8m0Value(128), 2)
        XCTAssertEqual(E2M1.e8m0Value(1), 0x1p-126)
        XCTAssertEqual(E2M1.e8m0Value(0), 0x1p-127)
        XCTAssertEqual(E2M1.e8m0Value(254), 0x1p127)
        XCTAssertTrue(E2M1.e8m0Value(255).isNaN)
        // X = 2^(floor(log2 amax) − 2): amax 5 → 1, 4 → 1, 3.99 → 0.5, 0.1 → 2^-6; zero → 2^-127.
        XCTAssertEqual(MXFP4Codec.scaleByte(absMax: 5), 127)
        XCTAssertEqual(MXFP4Codec.scaleByte(absMax: 4), 127)
        XCTAssertEqual(MXFP4Codec.scaleByte(absMax: 3.99), 126)
        XCTAssertEqual(MXFP4Codec.scaleByte(absMax: 0.1), 121)
        XCTAssertEqual(MXFP4Codec.scaleByte(absMax: 0), 0)
        XCTAssertEqual(MXFP4Codec.scaleByte(absMax: .greatestFiniteMagnitude), 252)
    }

    /// One row of 40 columns: a block with amax 5 (X = 1), one with amax 0.1 (X = 2^-6, 0.1 / X
    /// = 6.4 saturates to 6), and a partial block of 8 zeros.
    func testMXFP4HandWorkedExample() {
        var w = [Float](repeating: 0, count: 40)
        let first: [Float] = [5, -2.5, 0.75, 0.25, 1.75, -3.5, 0.1, 4.9]
        for (i, v) in first.enumerated() { w[i] = v }
        w[32 - 1] = -1.25
        w[32] = 0.1; w[33] = -0.05; w[34] = 0.0234375   // 0.05·64 = 3.2 → 3; 0.0234375·64 = 1.5
        let q = quantize(w, rows: 1, cols: 40, scheme: QuantScheme("mxfp4")!)
        XCTAssertEqual(q.scaleBytes, [127, 121])
        XCTAssertEqual(q.scales, [1, 0x1p-6])
        XCTAssertEqual(q.codes.count, 20)
        func code(_ j: Int) -> UInt8 { j % 2 == 0 ? q.codes[j / 2] & 0xF : q.codes[j / 2] >> 4 }
        XCTAssertEqual((0..<8).map(code), [6, 12, 2, 0, 4, 14, 0, 6])
        XCTAssertEqual(code(31), 10)
        XCTAssertEqual((32..<35).map(code), [7, 13, 3])
        XCTAssertEqual((35..<40).map(code), [0, 0, 0, 0, 0])
        let d = q.dequantized()
        XCTAssertEqual(Array(d[0..<8]), [4, -2, 1, 0, 2, -4, 0, 4])
        XCTAssertEqual(Array(d[32..<35]), [0.09375, -0.046875, 0.0234375])
    }

    /// g = amax / 2688 = 1 for a tensor whose amax is 2688. Block 0 has amax 2688: s = 448
    /// (0x7E); its elements are 448 · {every midpoint and code}. Block 1 has amax 3: s = 0.5
    /// (0x30). Block 2 is 8 zeros: s = 0 → 1.0 (0x38).
    func testNVFP4HandWorkedExample() {
        let scaled: [Float] = [0, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, 6, -0.5, -1, -1.5, -2, -3, -4, -6]
        var w = scaled.map { $0 * 448 }
        w += [3, -1, 0.3, 0.7] + [Float](repeating: 0, count: 12)
        w += [Float](repeating: 0, count: 8)
        let q = quantize(w, rows: 1, cols: 40, scheme: QuantScheme("nvfp4")!)
        XCTAssertEqual(q.globalScales, [1])
        XCTAssertEqual(q.scaleBytes, [0x7E, 0x30, 0x38])
        func code(_ j: Int) -> UInt8 { j % 2 == 0 ? q.codes[j / 2] & 0xF : q.codes[j / 2] >> 4 }
        XCTAssertEqual((0..<16).map(code), [0, 0, 2, 2, 4, 4, 6, 6, 7, 9, 10, 11, 12, 13, 14, 15])
        // 3 / 0.5 = 6, −1 / 0.5 = −2, 0.3 / 0.5 = 0.6 → 0.5, 0.7 / 0.5 = 1.4 → 1.5.
        XCTAssertEqual((16..<20).map(code), [7, 12, 1, 3])
        let d = q.dequantized()
        XCTAssertEqual(Array(d[0..<16]), [0, 0, 1, 1, 2, 2, 4, 4, 6, -0.5, -1, -1.5, -2, -3, -4, -6].map { $0 * 448 })
        XCTAssertEqual(Array(d[16..<20]), [3, -1, 0.25, 0.75])
    }

    /// With a global scale that is not a power of two, the stored values are ModelOpt's float32
    /// steps: g = amax / 2688, s = e4m3(bamax / (6 g)), code = e2m1(x / (s · g)), value · (s · g).
    func testNVFP4FollowsModelOptArithmetic() {
        let rows = 3, cols = 48
        let w = randomMatrix(rows: rows, cols: cols, seed: 5)
        let q = quantize(w, rows: rows, cols: cols, scheme: QuantScheme("nvfp4")!)
        let amax = w.map(abs).max()!
        let g = amax / (6 * 448)
        XCTAssertEqual(q.globalScales, [g])
        let d = q.dequantized()
        for r in 0..<rows {
            for b in 0..<3 {
                let block = Array(w[(r * cols + b * 16)..<(r * cols + b * 16 + 16)])
                var s = block.map(abs).max()! / (6 * g)
                if s == 0 { s = 1 }
                let sc = FP8E4M3.encode(s)
                XCTAssertEqual(q.scaleBytes[r * 3 + b], sc)
                let div = FP8E4M3.decode(sc) * g
                for (k, x) in block.enumerated() {
                    let j = r * cols + b * 16 + k
                    let c = j % 2 == 0 ? q.codes[j / 2] & 0xF : q.codes[j / 2] >> 4
                    XCTAssertEqual(c, E2M1.encode(x / div))
                    XCTAssertEqual(d[j], E2M1.decode(c) * div)
                }
            }
        }
    }

    /// encode → decode → encode gives the same codes and scales (odd width, partial blocks, an
    /// all-zero row), and decoding the stored bytes gives the same values — up to the sign of
    /// zero: a small negative value encodes as −0 (code 8, ModelOpt's sign bit is x < 0), which
    /// decodes to −0.0, which encodes as +0.
    func testRoundTripIsIdentityOnCodes() {
        for name in ["mxfp4", "nvfp4"] {
            let s = QuantScheme(name)!
            for (rows, cols) in [(7, 45), (4, 64), (1, 1), (3, 17)] {
                let w = randomMatrix(rows: rows, cols: cols, seed: UInt64(rows * cols), zeroRow: 0)
                let q = quantize(w, rows: rows, cols: cols, scheme: s)
                let back = q.dequantized()
                // Re-encoded under the same global scale (NVFP4's g would otherwise follow the
                // decoded values' amax, which is not the original's).
                var codes2 = [UInt8](repeating: 0, count: q.codes.count), scales2 = [UInt8](repeating: 0, count: q.scaleBytes.count)
                var g2 = [Float](repeating: 0, count: max(1, q.globalScales.count))
                back.withUnsafeBufferPointer { b in
                    Codec.encode(b.baseAddress!, cols: cols, rows: 0..<rows, scheme: s, codes: &codes2, scales: &scales2,
                                 zeroPoints: nil, tensorScale: q.globalScales.first, globalScales: &g2)
                }
                // Code 8 (−0) in either nibble reads as 0.
                func plusZero(_ b: UInt8) -> UInt8 { (b & 0xF == 8 ? b & 0xF0 : b) & (b >> 4 == 8 ? 0x0F : 0xFF) }
                XCTAssertEqual(codes2, q.codes.map(plusZero), "\(name) \(rows)×\(cols)")
                XCTAssertEqual(scales2, q.scaleBytes, "\(name) \(rows)×\(cols)")
                XCTAssertTrue(q.codes.contains { $0 & 0xF == 8 || $0 >> 4 == 8 } || rows * cols < 64, "the case is exercised")
                let q2 = QuantizedTensor(scheme: s, rows: rows, cols: cols, codes: codes2, scaleBytes: scales2, zeroPoints: [],
                                         globalScales: Array(g2.prefix(q.globalScales.count)))
                XCTAssertEqual(q2.dequantized(), back, "\(name) \(rows)×\(cols)")
                let copy = QuantizedTensor(scheme: s, rows: rows, cols: cols, codes: q.codes, scaleBytes: q.scaleBytes,
                                           zeroPoints: [], globalScales: q.globalScales)
                XCTAssertEqual(copy.dequantized().map(\.bitPattern), back.map(\.bitPattern))
                // Fake-quant is decode(encode) bit for bit.
                var f = w
                FakeQuant.apply(&f, rows: rows, cols: cols, scheme: s)
                XCTAssertEqual(f.map(\.bitPattern), back.map(\.bitPattern), "\(name) fake-quant")
                // An odd row ends in a byte whose high nibble is 0.
                if cols % 2 == 1 { for r in 0..<rows { XCTAssertEqual(q.codes[r * ((cols + 1) / 2) + cols / 2] >> 4, 0) } }
            }
        }
    }

    func testSectionsAndBitsPerWeight() {
        let mx = QuantScheme("mxfp4")!, nv = QuantScheme("nvfp4")!
        XCTAssertEqual(mx.description, "mxfp4")
        XCTAssertEqual(QuantScheme("NVFP4"), nv)
        XCTAssertEqual(mx.codec.sections(rows: 10, cols: 70, rowBlocks: 0),
                       [SectionSpec(name: "codes", element: .e2m1x2, count: 350), SectionSpec(name: "scales", element: .e8m0, count: 30)])
        XCTAssertEqual(nv.codec.sections(rows: 10, cols: 70, rowBlocks: 2),
                       [SectionSpec(name: "codes", element: .e2m1x2, count: 350), SectionSpec(name: "scales", element: .e4m3, count: 50),
                        SectionSpec(name: "global_scales", element: .f32, count: 2)])
        // 4 + 8/32 and 4 + 8/16 (+ 32 bits per tensor).
        XCTAssertEqual(mx.bitsPerWeight(rows: 2688, cols: 1856), 4.25, accuracy: 1e-12)
        XCTAssertEqual(nv.bitsPerWeight(rows: 2688, cols: 1856), 4.5 + 32.0 / (2688 * 1856), accuracy: 1e-12)
        let seg = TensorPlan.Segment(name: "z", rows: 0..<256, scheme: nv, blockRows: 64)
        XCTAssertEqual(seg.sections(cols: 32).map(\.name), ["z.codes", "z.scales", "z.global_scales"])
        XCTAssertEqual(seg.sections(cols: 32).last!.count, 4)
    }
}
