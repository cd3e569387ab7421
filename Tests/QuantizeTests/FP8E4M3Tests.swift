import XCTest
@testable import Quantize
import TestSupport

final class FP8E4M3Tests: XCTestCase {
    /// float8_e4m3fn from its definition: (-1)^s · 2^(e-7) · (1 + m/8), subnormal 2^-6 · m/8,
    /// S.1111.111 NaN; nil for NaN.
    static func definedValue(_ c: Int) -> Double? {
        let s = (c >> 7) & 1, e = (c >> 3) & 0xF, m = c & 7
        if e == 15 && m == 7 { return nil }
        let magnitude = e == 0 ? Double(m) / 8 * pow(2, -6) : (1 + Double(m) / 8) * pow(2, Double(e - 7))
        return s == 1 ? -magnitude : magnitude
    }

    func testDecodeAllCodesMatchesDefinition() {
        for c in 0..<256 {
            let v = FP8E4M3.decode(UInt8(c))
            if let expected = Self.definedValue(c) {
                XCTAssertEqual(Double(v), expected, "code \(c)")
                XCTAssertEqual(v.sign == .minus, c >= 0x80, "sign of code \(c)")
            } else {
                XCTAssertTrue(v.isNaN, "code \(c)")
            }
        }
        XCTAssertEqual(FP8E4M3.decode(0x7E), 448)
        XCTAssertEqual(FP8E4M3.decode(0xFE), -448)
        XCTAssertEqual(FP8E4M3.decode(0x08), 0x1p-6)
        XCTAssertEqual(FP8E4M3.decode(0x07), 7 * 0x1p-9)
        XCTAssertEqual(FP8E4M3.decode(0x01), 0x1p-9)
        XCTAssertEqual(FP8E4M3.decode(0x38), 1)
        XCTAssertEqual(FP8E4M3.decode(0x00).bitPattern, Float(0).bitPattern)
        XCTAssertEqual(FP8E4M3.decode(0x80).bitPattern, (-Float(0)).bitPattern)
        XCTAssertTrue(FP8E4M3.decode(0x7F).isNaN)
        XCTAssertTrue(FP8E4M3.decode(0xFF).isNaN)
        XCTAssertEqual((0..<256).filter { FP8E4M3.decode(UInt8($0)).isNaN }, [0x7F, 0xFF])
    }

    func testEncodeInvertsDecodeForEveryNonNaNCode() {
        for c in 0..<256 where c & 0x7F != 0x7F {
            XCTAssertEqual(FP8E4M3.encode(FP8E4M3.decode(UInt8(c))), UInt8(c), "code \(c)")
        }
    }

    func testMidpointsRoundToEvenCode() {
        for c in 0..<0x7E {
            let lo = FP8E4M3.decode(UInt8(c)), hi = FP8E4M3.decode(UInt8(c + 1))
            let mid = (lo + hi) / 2  // at most 5 significant bits: exact
            XCTAssertEqual(Double(mid), (Double(lo) + Double(hi)) / 2)
            let even = UInt8(c % 2 == 0 ? c : c + 1)
            XCTAssertEqual(FP8E4M3.encode(mid), even, "midpoint \(mid) of codes \(c), \(c + 1)")
            XCTAssertEqual(FP8E4M3.encode(-mid), even | 0x80, "midpoint \(-mid)")
            XCTAssertEqual(FP8E4M3.encode(mid.nextDown), UInt8(c), "just below \(mid)")
            XCTAssertEqual(FP8E4M3.encode(mid.nextUp), UInt8(c + 1), "just above \(mid)")
            XCTAssertEqual(FP8E4M3.encode(-mid.nextUp), UInt8(c + 1) | 0x80)
        }
    }

    func testRoundTripEqualsDecodeOfEncode() {
        var values: [Float] = [0, -0.0, 448, 449, 464, 480, 1e9, .infinity, -.infinity, 0x1p-10, 0x1p-9,
                               .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 7.5 * 0x1p-9, 0x1p-6]
        for c in 0..<0x7E {
            let mid = (FP8E4M3.decode(UInt8(c)) + FP8E4M3.decode(UInt8(c + 1))) / 2
            values += [mid, mid.nextDown, mid.nextUp, FP8E4M3.decode(UInt8(c))]
        }
        var g = SplitMix64(offsetSeed: 9)
        for _ in 0..<100_000 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: g.next()))) }
        for x in values + values.map({ -$0 }) {
            let expected = FP8E4M3.decode(FP8E4M3.encode(x))
            if expected.isNaN {
                XCTAssertTrue(FP8E4M3.roundTrip(x).isNaN)
            } else {
                XCTAssertEqual(FP8E4M3.roundTrip(x).bitPattern, expected.bitPattern, "\(x)")
            }
        }
    }

    func testSaturationAndSpecials() {
        for x: Float in [448, 448.5, 449, 463.9, 464, 465, 479.9, 480, 500, 1e6, .greatestFiniteMagnitude, .infinity] {
            XCTAssertEqual(FP8E4M3.encode(x), 0x7E, "\(x)")
            XCTAssertEqual(FP8E4M3.encode(-x), 0xFE, "\(-x)")
        }
        XCTAssertEqual(FP8E4M3.encode(Float(416).nextUp), 0x7D)  // below the 432 midpoint
        XCTAssertEqual(FP8E4M3.encode(432), 0x7E)  // 416 | 448 midpoint: 0x7E is even
        XCTAssertEqual(FP8E4M3.encode(.nan), 0x7F)
        XCTAssertEqual(FP8E4M3.encode(-Float.nan), 0x7F)
        XCTAssertEqual(FP8E4M3.encode(Float(bitPattern: 0x7F80_0001)), 0x7F)
        XCTAssertEqual(FP8E4M3.encode(0), 0x00)
        XCTAssertEqual(FP8E4M3.encode(-0.0), 0x80)
    }

    func testSmallestSubnormalBoundary() {
        let half: Float = 0x1p-10  // midpoint between 0 and the smallest subnormal 2^-9
        XCTAssertEqual(FP8E4M3.encode(half), 0x00)  // tie goes to the even code 0
        XCTAssertEqual(FP8E4M3.encode(half.nextDown), 0x00)
        XCTAssertEqual(FP8E4M3.encode(half.nextUp), 0x01)
        XCTAssertEqual(FP8E4M3.encode(-half.nextDown), 0x80)
        XCTAssertEqual(FP8E4M3.encode(.leastNonzeroMagnitude), 0x00)
        XCTAssertEqual(FP8E4M3.encode(1.5 * 0x1p-9), 0x02)  // tie between 1 and 2 → 2
        XCTAssertEqual(FP8E4M3.encode(2.5 * 0x1p-9), 0x02)  // tie between 2 and 3 → 2
        XCTAssertEqual(FP8E4M3.encode(7.5 * 0x1p-9), 0x08)  // tie between 7 and 2^-6 → 8
        XCTAssertEqual(FP8E4M3.encode(Float(0x1p-6).nextDown), 0x08)
    }

    /// Against the nearest representable value found by search, ties to the even code.
    func testRandomValuesAgainstExhaustiveSearch() {
        let finite = (0..<0x7F).map { Double(FP8E4M3.decode(UInt8($0))) }
        func nearest(_ x: Float) -> UInt8 {
            let a = Double(abs(x))
            var best = 0
            for c in 1..<finite.count {
                let d = abs(finite[c] - a), bd = abs(finite[best] - a)
                if d < bd || (d == bd && c % 2 == 0) { best = c }
            }
            return UInt8(best) | (x.sign == .minus ? 0x80 : 0)
        }
        var g = SplitMix64(offsetSeed: 8)
        for i in 0..<50_000 {
            let magnitude = Float(pow(2, Double(g.uniform(-12, 9.2))))
            let x = i % 2 == 0 ? magnitude : -magnitude
            XCTAssertEqual(FP8E4M3.encode(x), nearest(min(max(x, -448), 448)), "\(x)")
        }
    }

    func testPerTensorAndPerChannelScales() {
        // rows: [896, -224, 1, 0] (s = 2) and [0, 0, 0, 0] (s = 1)
        var w: [Float] = [896, -224, 1, 0, 0, 0, 0, 0]
        var codes = [UInt8](repeating: 0xAA, count: 8)
        var scales = [Float](repeating: 0, count: 2)
        FP8E4M3.encodeChannel(w, cols: 4, rows: 0..<2, codes: &codes, scales: &scales)
        XCTAssertEqual(scales, [2, 1])
        // 448 → 0x7E; -112 = -1.75·2^6 → 0xEE; 0.5 = 2^-1 → 0x30
        XCTAssertEqual(codes, [0x7E, 0xEE, 0x30, 0x00, 0, 0, 0, 0])
        var out = [Float](repeating: .nan, count: 8)
        FP8E4M3.decodeChannel(codes: codes, scales: scales, cols: 4, rows: 0..<2, into: &out)
        XCTAssertEqual(out, [896, -224, 1, 0, 0, 0, 0, 0])

        XCTAssertEqual(FP8E4M3.tensorScale(w, count: 8), 2)
        XCTAssertEqual(FP8E4M3.tensorScale([0, 0, -0.0], count: 3), 1)
        XCTAssertEqual(FP8E4M3.tensorScale([1, .infinity, -.nan, -896], count: 4), 2)
        w.withUnsafeMutableBufferPointer { FP8E4M3.fakeQuant($0.baseAddress!, count: 8, scale: 2) }
        XCTAssertEqual(w, out)
    }

    /// reference.json's fp8 baselines, written out with nothing but the formulas.
    func testMatchesReferenceFormula() {
        let rows = 9, cols = 77
        let w = randomMatrix(rows: rows, cols: cols, seed: 5, zeroRow: 4)
        let finite = (0..<0x7F).map { FP8E4M3.decode(UInt8($0)) }
        func roundToE4M3(_ x: Float) -> Float {  // nearest, ties to even code, by search
            let a = abs(x)
            var best = 0
            for c in 1..<finite.count {
                let d = abs(finite[c] - a), bd = abs(finite[best] - a)
                if d < bd || (d == bd && c % 2 == 0) { best = c }
            }
            return x.sign == .minus ? -finite[best] : finite[best]
        }
        let tensorMax = w.map { abs($0) }.max()!
        let st = tensorMax / 448
        var tensorFake = w, channelFake = w
        FakeQuant.apply(&tensorFake, rows: rows, cols: cols, scheme: .fp8Tensor)
        FakeQuant.apply(&channelFake, rows: rows, cols: cols, scheme: .fp8Channel)
        for r in 0..<rows {
            let rowMax = w[r * cols..<(r + 1) * cols].map { abs($0) }.max()!
            let sc: Float = rowMax == 0 ? 1 : rowMax / 448
            for j in 0..<cols {
                let x = w[r * cols + j]
                XCTAssertEqual(tensorFake[r * cols + j], roundToE4M3(x / st) * st)
                XCTAssertEqual(channelFake[r * cols + j], roundToE4M3(x / sc) * sc)
                // 3 mantissa bits: relative error ≤ 2^-4 for normals, 2^-10·s below them
                XCTAssertLessThanOrEqual(abs(channelFake[r * cols + j] - x),
                                         max(abs(x) * 0x1p-4, 0x1p-10 * sc) * 1.000001)
            }
        }
    }
}
