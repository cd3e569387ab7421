import XCTest
import Foundation
@testable import Verify

/// The per-token metrics on logit vectors small enough to work out by hand.
final class LogitComparisonTests: XCTestCase {
    func kl(_ p: [Float], _ q: [Float]) -> Double {
        var w = [Float](repeating: 0, count: 2 * p.count)
        return p.withUnsafeBufferPointer { pp in
            q.withUnsafeBufferPointer { qq in
                w.withUnsafeMutableBufferPointer { LogitComparison.klDivergence(pp.baseAddress!, qq.baseAddress!, count: p.count, work: $0.baseAddress!) }
            }
        }
    }

    func argmax(_ x: [Float]) -> Int { x.withUnsafeBufferPointer { LogitComparison.argmax($0.baseAddress!, count: x.count) } }

    func testIdenticalLogitsGiveExactlyZero() {
        let p: [Float] = [3.5, -1, 0.25, 7, 7, -20]
        XCTAssertEqual(kl(p, p), 0)
        // Softmax ignores a constant shift: the same distribution.
        XCTAssertEqual(kl(p, p.map { $0 + 5 }), 0, accuracy: 1e-12)
        XCTAssertEqual(argmax(p), 3, "a tie goes to the lower index")
    }

    func testTwoTokens() {
        // P = softmax(0, 0) = (1/2, 1/2); Q = softmax(ln 3, 0) = (3/4, 1/4).
        // KL = ½ ln(½ / ¾) + ½ ln(½ / ¼) = ½ ln(2/3) + ½ ln 2 = ½ ln(4/3) = 0.14384103622589045.
        XCTAssertEqual(kl([0, 0], [Float(log(3.0)), 0]), 0.5 * log(4.0 / 3.0), accuracy: 1e-7)
        // The reverse direction differs: KL(Q‖P) = ¾ ln(3/2) + ¼ ln(1/2) = 0.13081203594113694.
        XCTAssertEqual(kl([Float(log(3.0)), 0], [0, 0]), 0.75 * log(1.5) + 0.25 * log(0.5), accuracy: 1e-7)
    }

    func testReversedThreeTokens() {
        // p = (2, 1, 0), q = (0, 1, 2): q is p reversed, so both log-sum-exps are equal and
        // KL = Σ Pᵢ (pᵢ − qᵢ) = 2 P₀ − 2 P₂ = 2 (e² − 1) / (e² + e + 1) = 1.1504200540316296.
        let e = M_E
        XCTAssertEqual(kl([2, 1, 0], [0, 1, 2]), 2 * (e * e - 1) / (e * e + e + 1), accuracy: 1e-6)
        XCTAssertNotEqual(argmax([2, 1, 0]), argmax([0, 1, 2]))
    }

    func testSmallPerturbationKeepsItsDigits() {
        // q = p + ε·δ with Σ-free δ: KL ≈ ½ ε² Var_P(δ). With p uniform over 4 and δ = (1, −1, 1, −1),
        // Var = 1, so KL ≈ ε²/2 = 5e-11 for ε = 1e-5; the log-sum-exp difference formula would
        // return rounding noise of ~1e-7 here.
        let eps: Float = 1e-5
        let value = kl([0, 0, 0, 0], [eps, -eps, eps, -eps])
        XCTAssertEqual(value, Double(eps) * Double(eps) / 2, accuracy: 1e-12)
    }

    func testSummaryPercentiles() {
        // Sorted 1, 2, 3, 4: median at position 1.5 → 2.5; p99 at 2.97 → 3 + 0.97 = 3.97.
        let s = ValueSummary([4, 1, 3, 2])
        XCTAssertEqual(s.mean, 2.5)
        XCTAssertEqual(s.median, 2.5)
        XCTAssertEqual(s.p99, 3.97, accuracy: 1e-12)
        XCTAssertEqual(s.max, 4)
        XCTAssertEqual(s.count, 4)
        XCTAssertEqual(ValueSummary([]).mean, 0)
    }

    func testRelativeErrorAccumulatesOverChunks() {
        // Reference (3, 4) and (0, 0, 12) → ‖r‖ = 13; test off by (1, 0) and (0, 0, −5) → ‖d‖ = √26.
        var e = RelativeError()
        let r1: [Float] = [3, 4], t1: [Float] = [4, 4]
        let r2: [Float] = [0, 0, 12], t2: [Float] = [0, 0, 7]
        e.add(reference: r1, test: t1, count: 2, rows: 1)
        e.add(reference: r2, test: t2, count: 3, rows: 1)
        XCTAssertEqual(e.value, 26.0.squareRoot() / 13, accuracy: 1e-12)
        XCTAssertEqual(e.rows, 2)
    }

    func testThresholdMessagesNameTheOption() {
        let r = VerifyReport(original: .init(ppl: 10, nllMean: log(10)), quantized: .init(ppl: 11, nllMean: log(11)),
                             kld: ValueSummary(mean: 0.02, median: 0.01, p99: 0.2, max: 1, count: 100), top1Agreement: 0.9,
                             tokensScored: 100, windows: 1, ctx: 101, layers: [], seconds: 1, tokensPerSecond: 1, peakRSSBytes: 0)
        XCTAssertEqual(VerifyThresholds(maxKLD: 0.03, minTop1: 0.85, maxPPLRatio: 1.2).failures(r), [])
        let f = VerifyThresholds(maxKLD: 0.01, minTop1: 0.95, maxPPLRatio: 1.05).failures(r)
        XCTAssertEqual(f.count, 3)
        XCTAssertTrue(f[0].contains("--max-kld"), f[0])
        XCTAssertTrue(f[1].contains("--min-top1"), f[1])
        XCTAssertTrue(f[2].contains("--max-ppl-ratio") && f[2].contains("1.1"), f[2])
        XCTAssertTrue(VerifyThresholds().failures(r).isEmpty)
    }
}
