import XCTest
@testable import Quantize
import TestSupport

final class Int8CodecTests: XCTestCase {
    func testHandComputedCodesAndScales() {
        let w: [Float] = [
            127, 2.5, 3.5, -2.5, -0.4, 0.5, -127, 1.5,  // s = 1: ties go to even
            254, 3, -5, 1, 0, -254, 253, -1,            // s = 2
            0, 0, 0, 0, 0, 0, 0, 0,                     // zero row: s = 1, codes 0
        ]
        var codes = [Int8](repeating: 99, count: 24)
        var scales = [Float](repeating: 0, count: 3)
        Int8Codec.encode(w, cols: 8, rows: 0..<3, codes: &codes, scales: &scales)
        XCTAssertEqual(scales, [1, 2, 1])
        XCTAssertEqual(codes, [
            127, 2, 4, -2, 0, 0, -127, 2,
            127, 2, -2, 0, 0, -127, 126, 0,  // 1.5 → 2, -2.5 → -2, 0.5 → 0, 126.5 → 126, -0.5 → 0
            0, 0, 0, 0, 0, 0, 0, 0,
        ])
        var out = [Float](repeating: .nan, count: 24)
        Int8Codec.decode(codes: codes, scales: scales, cols: 8, rows: 0..<3, into: &out)
        XCTAssertEqual(out, [127, 2, 4, -2, 0, 0, -127, 2,
                             254, 4, -4, 0, 0, -254, 252, 0,
                             0, 0, 0, 0, 0, 0, 0, 0])
    }

    func testRowRangesOnlyTouchTheirRows() {
        let w: [Float] = [1, -1, 4, 8]
        var codes = [Int8](repeating: 99, count: 4)
        var scales: [Float] = [-1, -1]
        Int8Codec.encode(w, cols: 2, rows: 1..<2, codes: &codes, scales: &scales)
        XCTAssertEqual(codes, [99, 99, 64, 127])  // 4 / (8/127) = 63.5 → 64 (even)
        XCTAssertEqual(scales, [-1, Float(8) / 127])
    }

    func testNonFiniteInputsDoNotReachTheScale() {
        let w: [Float] = [1, .infinity, -2, .nan]
        var codes = [Int8](repeating: 0, count: 4)
        var scales: [Float] = [0]
        Int8Codec.encode(w, cols: 4, rows: 0..<1, codes: &codes, scales: &scales)
        XCTAssertEqual(scales[0], 2 / 127)
        XCTAssertEqual(Array(codes[0...2]), [64, 127, -127])  // 63.5 → 64
    }

    func testTinyAndSubnormalRowsGiveFiniteScales() {
        let w: [Float] = [.leastNonzeroMagnitude, -.leastNonzeroMagnitude, 0, 1e-42]
        var codes = [Int8](repeating: 0, count: 4)
        var scales: [Float] = [0]
        Int8Codec.encode(w, cols: 4, rows: 0..<1, codes: &codes, scales: &scales)
        XCTAssertTrue(scales[0].isFinite && scales[0] > 0)
        var out = [Float](repeating: .nan, count: 4)
        Int8Codec.decode(codes: codes, scales: scales, cols: 4, rows: 0..<1, into: &out)
        for (a, b) in zip(out, w) { XCTAssertTrue(a.isFinite); XCTAssertLessThanOrEqual(abs(a - b), 2e-42) }
    }

    /// reference.json's int8-channel formula written out plainly, and the s/2 error bound.
    func testMatchesReferenceFormulaAndErrorBound() {
        let rows = 17, cols = 301
        let w = randomMatrix(rows: rows, cols: cols, seed: 1, zeroRow: 3)
        var codes = [Int8](repeating: 0, count: rows * cols)
        var scales = [Float](repeating: 0, count: rows)
        Int8Codec.encode(w, cols: cols, rows: 0..<rows, codes: &codes, scales: &scales)
        var out = [Float](repeating: 0, count: rows * cols)
        Int8Codec.decode(codes: codes, scales: scales, cols: cols, rows: 0..<rows, into: &out)
        for r in 0..<rows {
            let absmax = w[r * cols..<(r + 1) * cols].map { abs($0) }.max()!
            let s: Float = absmax == 0 ? 1 : absmax / 127
            XCTAssertEqual(scales[r], s)
            for j in 0..<cols {
                let i = r * cols + j
                let q = min(max(referenceRound(w[i] / s), -127), 127)
                XCTAssertEqual(Float(codes[i]), q, "[\(r), \(j)]")
                XCTAssertEqual(out[i], q * s)
                XCTAssertLessThanOrEqual(abs(out[i] - w[i]), s / 2 * 1.00001)
            }
        }
        var fake = w
        Int8Codec.fakeQuant(&fake, cols: cols, rows: 0..<rows)
        XCTAssertEqual(bitPatterns(fake), bitPatterns(out))
    }
}
