import XCTest
@testable import Quantize
import TestSupport

final class HalfPrecisionTests: XCTestCase {
    func testBF16RoundsToNearestEven() {
        XCTAssertEqual(BF16Codec.encode(1), 0x3F80)
        XCTAssertEqual(BF16Codec.encode(1 + 0x1p-8), 0x3F80)               // tie → even 0x3F80
        XCTAssertEqual(BF16Codec.encode(1 + 3 * 0x1p-8), 0x3F82)           // tie → even 0x3F82
        XCTAssertEqual(BF16Codec.encode(1 + 0x1p-8 + 0x1p-20), 0x3F81)     // above the tie
        XCTAssertEqual(BF16Codec.encode((1 + 0x1p-8).nextDown), 0x3F80)
        XCTAssertEqual(BF16Codec.encode(-2.5), 0xC020)
        XCTAssertEqual(BF16Codec.encode(-0.0), 0x8000)
        XCTAssertEqual(BF16Codec.encode(.infinity), 0x7F80)
        XCTAssertEqual(BF16Codec.encode(-.infinity), 0xFF80)
        XCTAssertEqual(BF16Codec.encode(.greatestFiniteMagnitude), 0x7F80)  // rounds up to inf
        XCTAssertEqual(BF16Codec.decode(0x3F80), 1)
        XCTAssertEqual(BF16Codec.decode(0xC020), -2.5)
        for nan in [Float.nan, -Float.nan, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFFFF_FFFF),
                    Float.signalingNaN] {
            XCTAssertTrue(BF16Codec.decode(BF16Codec.encode(nan)).isNaN, "\(nan.bitPattern)")
        }
    }

    func testBF16AgainstNearestSearchOnRandomBits() {
        var g = SplitMix64(offsetSeed: 16)
        for _ in 0..<200_000 {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: g.next()))
            guard x.isFinite else { continue }
            let down = UInt16(x.bitPattern >> 16)
            // IEEE rounding treats ±inf as the next value past the largest finite, ±2^128
            let a = Double(BF16Codec.decode(down)), b = Double(BF16Codec.decode(down &+ 1))
            let d1 = abs(Double(x) - a), d2 = abs(Double(x) - (b.isInfinite ? b.sign == .minus ? -0x1p128 : 0x1p128 : b))
            let expected = d1 < d2 || (d1 == d2 && down & 1 == 0) ? down : down &+ 1
            XCTAssertEqual(BF16Codec.encode(x), expected, "\(x)")
        }
        for h in 0...UInt16.max where !BF16Codec.decode(h).isNaN {
            XCTAssertEqual(BF16Codec.encode(BF16Codec.decode(h)), h)
        }
    }

    func testF16() {
        XCTAssertEqual(F16Codec.encode(1), 0x3C00)
        XCTAssertEqual(F16Codec.encode(1 + 0x1p-11), 0x3C00)      // tie → even
        XCTAssertEqual(F16Codec.encode(1 + 3 * 0x1p-11), 0x3C02)  // tie → even
        XCTAssertEqual(F16Codec.encode(65504), 0x7BFF)
        XCTAssertEqual(F16Codec.encode(65519), 0x7BFF)
        XCTAssertEqual(F16Codec.encode(65520), 0x7C00)            // tie with "65536" → inf
        XCTAssertEqual(F16Codec.encode(0x1p-24), 0x0001)
        XCTAssertEqual(F16Codec.encode(0x1p-25), 0x0000)          // tie → even 0
        XCTAssertEqual(F16Codec.encode(-0.0), 0x8000)
        XCTAssertTrue(F16Codec.decode(F16Codec.encode(.nan)).isNaN)
        XCTAssertEqual(F16Codec.decode(0x3555), 0x1.554p-2)
        for h in 0...UInt16.max where !F16Codec.decode(h).isNaN {
            XCTAssertEqual(F16Codec.encode(F16Codec.decode(h)), h)
        }
    }

    func testBulkLoopsMatchScalar() {
        let w = randomMatrix(rows: 3, cols: 101, seed: 3) + [.nan, .infinity, -0.0, 1e-40]
        var b = [UInt16](repeating: 0, count: w.count), h = b
        BF16Codec.encode(w, count: w.count, into: &b)
        F16Codec.encode(w, count: w.count, into: &h)
        XCTAssertEqual(b, w.map(BF16Codec.encode))
        XCTAssertEqual(h, w.map(F16Codec.encode))
        var fb = w, fh = w
        BF16Codec.fakeQuant(&fb, count: w.count)
        F16Codec.fakeQuant(&fh, count: w.count)
        XCTAssertEqual(bitPatterns(fb), bitPatterns(b.map(BF16Codec.decode)))
        XCTAssertEqual(bitPatterns(fh), bitPatterns(h.map(F16Codec.decode)))
    }
}
