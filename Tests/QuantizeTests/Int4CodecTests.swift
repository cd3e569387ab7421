import XCTest
@testable import Quantize
import TestSupport

final class Int4CodecTests: XCTestCase {
    func testSymmetricTiesPackingAndPartialGroup() {
        // cols 14, group 8: groups [0, 8) and the partial [8, 14)
        let w: [Float] = [7, 2.5, 3.5, -2.5, -3.5, 0.5, 1.5, -0.5,   // absmax 7 → s = 1
                          14, -7, 3, -1, 0, 5]                        // absmax 14 → s = 2
        var codes = [UInt8](repeating: 0xAA, count: 7)
        var scales = [Float](repeating: 0, count: 2)
        Int4Codec.encodeSymmetric(w, cols: 14, rows: 0..<1, group: 8, codes: &codes, scales: &scales)
        XCTAssertEqual(scales, [1, 2])
        // q: 7 2 4 -2 -4 0 2 0 | 7 -4 2 0 0 2   (-7/2 = -3.5 → -4, 3/2 = 1.5 → 2, -1/2 → 0, 5/2 → 2)
        XCTAssertEqual(codes, [0x27, 0xE4, 0x0C, 0x02, 0xC7, 0x02, 0x20])
        var out = [Float](repeating: .nan, count: 14)
        Int4Codec.decodeSymmetric(codes: codes, scales: scales, cols: 14, rows: 0..<1, group: 8, into: &out)
        XCTAssertEqual(out, [7, 2, 4, -2, -4, 0, 2, 0, 14, -8, 4, 0, 0, 4])
    }

    func testOddWidthPadsTheLastByteAndZeroGroups() {
        // 2 rows of 5, group 4: row 0 = [7, -7, 3, 0 | -3.5], row 1 all zero
        let w: [Float] = [7, -7, 3, 0, -3.5, 0, 0, 0, 0, 0]
        var codes = [UInt8](repeating: 0xAA, count: 6)
        var scales = [Float](repeating: 0, count: 4)
        Int4Codec.encodeSymmetric(w, cols: 5, rows: 0..<2, group: 4, codes: &codes, scales: &scales)
        XCTAssertEqual(Int4Codec.bytesPerRow(cols: 5), 3)
        XCTAssertEqual(scales, [1, 0.5, 1, 1])
        XCTAssertEqual(codes, [0x97, 0x03, 0x09, 0x00, 0x00, 0x00])
        var out = [Float](repeating: .nan, count: 10)
        Int4Codec.decodeSymmetric(codes: codes, scales: scales, cols: 5, rows: 0..<2, group: 4, into: &out)
        XCTAssertEqual(out, w)
    }

    func testAsymmetricHandComputed() {
        // cols 10, group 4: groups [0,4), [4,8), partial [8,10)
        let w: [Float] = [
            -1.5, 6, 1.25, 1.75,  0, 0, 0, 0,      7.5, 15,  // s .5 zp 3 | zero: s 1 zp 0 | s 1 zp 0
            -15, -7.5, -0.5, -1,  -3, 12, 0.5, 1,  0, 0,     // s 1 zp 15 | s 1 zp 3 | zero
        ]
        var codes = [UInt8](repeating: 0xAA, count: 10)
        var scales = [Float](repeating: 0, count: 6)
        var zps = [UInt8](repeating: 0xAA, count: 6)
        Int4Codec.encodeAsymmetric(w, cols: 10, rows: 0..<2, group: 4, codes: &codes, scales: &scales,
                                   zeroPoints: &zps)
        XCTAssertEqual(scales, [0.5, 1, 1, 1, 1, 1])
        XCTAssertEqual(zps, [3, 0, 0, 15, 3, 0])
        // row 0 q: 0 15 5 7 | 0 0 0 0 | 8 15   (2.5 → 2, 3.5 → 4, 7.5 → 8)
        // row 1 q: 0 7 15 14 | 0 15 3 4 | 0 0  (-7.5 → -8, -0.5 → 0, 0.5 → 0)
        XCTAssertEqual(codes, [0xF0, 0x75, 0x00, 0x00, 0xF8,
                               0x70, 0xEF, 0xF0, 0x43, 0x00])
        var out = [Float](repeating: .nan, count: 20)
        Int4Codec.decodeAsymmetric(codes: codes, scales: scales, zeroPoints: zps, cols: 10, rows: 0..<2,
                                   group: 4, into: &out)
        XCTAssertEqual(out, [-1.5, 6, 1, 2, 0, 0, 0, 0, 8, 15,
                             -15, -8, 0, -1, -3, 12, 0, 1, 0, 0])
    }

    func testAsymmetricOneSidedAndConstantGroups() {
        let w: [Float] = [0.3, 0.3, 0.3, 0.3,  -2, -2, -2, -2,  10, 11, 12, 13]
        var fake = w
        Int4Codec.fakeQuantAsymmetric(&fake, cols: 4, rows: 0..<3, group: 4)
        for r in 0..<3 {
            let hi = w[r * 4..<r * 4 + 4].map { max($0, 0) }.max()!
            let lo = w[r * 4..<r * 4 + 4].map { min($0, 0) }.min()!
            let s = (hi - lo) / 15
            for j in 0..<4 { XCTAssertLessThanOrEqual(abs(fake[r * 4 + j] - w[r * 4 + j]), s / 2 * 1.0001) }
        }
    }

    func testNonFiniteInputsDoNotReachScales() {
        let w: [Float] = [1, .infinity, -2, .nan,  -.infinity, 3, 0.5, -.nan]
        var codes = [UInt8](repeating: 0, count: 4)
        var scales = [Float](repeating: 0, count: 2)
        var zps = [UInt8](repeating: 0, count: 2)
        Int4Codec.encodeSymmetric(w, cols: 8, rows: 0..<1, group: 4, codes: &codes, scales: &scales)
        XCTAssertEqual(scales, [Float(2) / 7, Float(3) / 7])
        Int4Codec.encodeAsymmetric(w, cols: 8, rows: 0..<1, group: 4, codes: &codes, scales: &scales,
                                   zeroPoints: &zps)
        XCTAssertEqual(scales, [Float(3) / 15, Float(3) / 15])  // ranges [-2, 1] and [0, 3]
        XCTAssertEqual(zps, [10, 0])
        XCTAssertEqual(codes[0] & 0xF, 15)  // 1 / 0.2 = 5 → 15
    }

    /// reference.json: "groups of N consecutive input columns (a width that N does not divide is
    /// zero-padded to a multiple of N), s = max|w| over the group / 7 (1 if that is 0),
    /// q = clamp(round(w/s), -8, 7)" — written out with explicit zero padding.
    func testSymmetricMatchesZeroPaddedReference() {
        for (cols, group) in [(100, 32), (93, 8), (64, 64), (29 * 64, 128), (37, 5), (7, 128), (1, 1)] {
            let rows = 5
            let w = randomMatrix(rows: rows, cols: cols, seed: UInt64(cols * 1000 + group), zeroRow: 2)
            let groups = (cols + group - 1) / group
            var codes = [UInt8](repeating: 0, count: rows * Int4Codec.bytesPerRow(cols: cols))
            var scales = [Float](repeating: 0, count: rows * groups)
            Int4Codec.encodeSymmetric(w, cols: cols, rows: 0..<rows, group: group, codes: &codes, scales: &scales)
            var out = [Float](repeating: .nan, count: rows * cols)
            Int4Codec.decodeSymmetric(codes: codes, scales: scales, cols: cols, rows: 0..<rows, group: group,
                                      into: &out)
            for r in 0..<rows {
                var padded = Array(w[r * cols..<(r + 1) * cols])
                padded += [Float](repeating: 0, count: groups * group - cols)
                for g in 0..<groups {
                    let absmax = padded[g * group..<(g + 1) * group].map { abs($0) }.max()!
                    let s: Float = absmax == 0 ? 1 : absmax / 7
                    XCTAssertEqual(scales[r * groups + g], s, "cols \(cols) group \(group) [\(r), \(g)]")
                    for j in g * group..<min((g + 1) * group, cols) {
                        let q = min(max(referenceRound(padded[j] / s), -8), 7)
                        let byte = codes[r * Int4Codec.bytesPerRow(cols: cols) + j / 2]
                        let nibble = j % 2 == 0 ? byte & 0xF : byte >> 4
                        XCTAssertEqual(Int(nibble), (Int(q) + 16) % 16, "cols \(cols) [\(r), \(j)]")
                        XCTAssertEqual(out[r * cols + j], q * s)
                        XCTAssertLessThanOrEqual(abs(out[r * cols + j] - w[r * cols + j]), s / 2 * 1.00001)
                    }
                }
                if cols % 2 == 1 {
                    XCTAssertEqual(codes[(r + 1) * Int4Codec.bytesPerRow(cols: cols) - 1] >> 4, 0)
                }
            }
            var fake = w
            Int4Codec.fakeQuantSymmetric(&fake, cols: cols, rows: 0..<rows, group: group)
            XCTAssertEqual(bitPatterns(fake), bitPatterns(out), "cols \(cols) group \(group)")
        }
    }

    func testAsymmetricErrorBoundAndFakeQuantIdentity() {
        for (cols, group) in [(300, 64), (1856, 128), (45, 7)] {
            let rows = 6
            let w = randomMatrix(rows: rows, cols: cols, seed: UInt64(cols + group), zeroRow: 1)
            let groups = (cols + group - 1) / group
            var codes = [UInt8](repeating: 0, count: rows * Int4Codec.bytesPerRow(cols: cols))
            var scales = [Float](repeating: 0, count: rows * groups)
            var zps = [UInt8](repeating: 0, count: rows * groups)
            Int4Codec.encodeAsymmetric(w, cols: cols, rows: 0..<rows, group: group, codes: &codes,
                                       scales: &scales, zeroPoints: &zps)
            var out = [Float](repeating: .nan, count: rows * cols)
            Int4Codec.decodeAsymmetric(codes: codes, scales: scales, zeroPoints: zps, cols: cols,
                                       rows: 0..<rows, group: group, into: &out)
            for r in 0..<rows {
                for g in 0..<groups {
                    let s = scales[r * groups + g]
                    XCTAssertTrue(s.isFinite && s > 0)
                    XCTAssertLessThanOrEqual(zps[r * groups + g], 15)
                    let span = g * group..<min((g + 1) * group, cols)
                    let lo = min(0, w[r * cols + span.lowerBound..<r * cols + span.upperBound].min()!)
                    let hi = max(0, w[r * cols + span.lowerBound..<r * cols + span.upperBound].max()!)
                    XCTAssertEqual(s, hi == lo ? 1 : (hi - lo) / 15)
                    for j in span {
                        XCTAssertLessThanOrEqual(abs(out[r * cols + j] - w[r * cols + j]), s / 2 * 1.0001,
                                                 "cols \(cols) [\(r), \(j)]")
                    }
                }
            }
            for r in 0..<rows where r == 1 {
                XCTAssertEqual(Array(out[r * cols..<(r + 1) * cols]), [Float](repeating: 0, count: cols))
            }
            var fake = w
            Int4Codec.fakeQuantAsymmetric(&fake, cols: cols, rows: 0..<rows, group: group)
            XCTAssertEqual(bitPatterns(fake), bitPatterns(out), "cols \(cols) group \(group)")
        }
    }
}
