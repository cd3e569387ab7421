import XCTest
@testable import Quantize
import TestSupport

/// GPTQ and clipping search: exact where they must equal round-to-nearest, and measurably better
/// on the output error they minimise where inputs are correlated.
final class CalibratedEncoderTests: XCTestCase {
    let rows = 48, cols = 96

    /// Inputs with strongly correlated channels and a few loud ones, [n, cols].
    func inputs(_ n: Int, seed: UInt64) -> [Float] {
        var g = SplitMix64(offsetSeed: seed)
        let k = 8
        let mix = (0..<(k * cols)).map { _ in g.normal(1) }
        var x = [Float](repeating: 0, count: n * cols)
        for r in 0..<n {
            let z = (0..<k).map { _ in g.normal(1) }
            for j in 0..<cols {
                var v: Float = 0.1 * g.normal(1)
                for i in 0..<k { v += z[i] * mix[i * cols + j] }
                x[r * cols + j] = j % 17 == 0 ? 6 * v : v
            }
        }
        return x
    }

    func gram(_ x: [Float], n: Int) -> [Float] {
        var h = [Float](repeating: 0, count: cols * cols)
        for r in 0..<n { for i in 0..<cols { let a = x[r * cols + i]; for j in 0..<cols { h[i * cols + j] += a * x[r * cols + j] } } }
        return h
    }

    func encodeDecode(_ w: [Float], scheme: QuantScheme, encoder: SegmentEncoder?) -> (codes: [UInt8], scales: [Float], zeros: [UInt8], values: [Float]) {
        let layout = scheme.layout(rows: rows, cols: cols)
        var codes = [UInt8](repeating: 0xAA, count: layout.codeBytes)
        var scales = [Float](repeating: .nan, count: layout.scaleCount)
        var zeros = [UInt8](repeating: 0, count: layout.zeroPointCount)
        var globals = [Float](repeating: .nan, count: max(1, layout.globalScaleCount))
        var work = w
        let seg = TensorPlan.Segment(name: "", rows: 0..<rows, scheme: scheme)
        // A per-tensor scale (NVFP4's global one) is measured on the original weights, as the converter does.
        let tensorScale = w.withUnsafeBufferPointer { Codec.tensorScale($0.baseAddress!, count: w.count, scheme: scheme) }
        let blockScales: [Float]? = scheme.codec.rowBlockScale != nil ? [tensorScale] : nil
        codes.withUnsafeMutableBytes { c in
            scales.withUnsafeMutableBufferPointer { s in
                zeros.withUnsafeMutableBufferPointer { z in
                    work.withUnsafeMutableBufferPointer { wp in
                        if let e = encoder {
                            e.encode(wp.baseAddress!, rows: rows, cols: cols, segment: seg, firstRow: 0, blockScales: blockScales,
                                     codes: c.baseAddress!, scales: s.baseAddress, zeroPoints: z.baseAddress)
                            globals[0] = tensorScale
                        } else {
                            Codec.encode(wp.baseAddress!, cols: cols, rows: 0..<rows, scheme: scheme, codes: c.baseAddress!,
                                         scales: s.baseAddress, zeroPoints: z.baseAddress, tensorScale: tensorScale, globalScales: &globals)
                        }
                    }
                }
            }
        }
        var out = [Float](repeating: 0, count: rows * cols)
        codes.withUnsafeBytes { c in scales.withUnsafeBufferPointer { s in zeros.withUnsafeBufferPointer { z in
            Codec.decode(codes: c.baseAddress!, scales: s.baseAddress, zeroPoints: z.isEmpty ? nil : z.baseAddress, cols: cols,
                         rows: 0..<rows, scheme: scheme, into: &out, globalScales: globals)
        } } }
        return (codes, scales, zeros, out)
    }

    /// ‖X (W − Ŵ)ᵀ‖² = Σ_r (w_r − ŵ_r) H (w_r − ŵ_r)ᵀ.
    func outputError(_ w: [Float], _ q: [Float], _ h: [Float]) -> Double {
        var total = 0.0
        for r in 0..<rows {
            let d = (0..<cols).map { Double(w[r * cols + $0] - q[r * cols + $0]) }
            for i in 0..<cols { var s = 0.0; for j in 0..<cols { s += Double(h[i * cols + j]) * d[j] }; total += d[i] * s }
        }
        return total
    }

    let schemes: [QuantScheme] = [.int8Channel, .int4(group: 32, symmetric: true), .int4(group: 32, symmetric: false),
                                  .int4(group: 40, symmetric: true), .fp8Channel, QuantScheme("mxfp4")!, QuantScheme("nvfp4")!,
                                  // ggml's blocks: codes and FP16 block scales chosen on the block's own grid.
                                  QuantScheme("q8_0")!, QuantScheme("q4_0")!, QuantScheme("q4_1")!, QuantScheme("q5_0")!,
                                  QuantScheme("q5_1")!, QuantScheme("iq4_nl")!, QuantScheme("gguf-mxfp4")!]

    func testGPTQWithUncorrelatedUnitHessianIsRoundToNearestBitForBit() throws {
        var h = [Float](repeating: 0, count: cols * cols)
        for i in 0..<cols { h[i * cols + i] = 3 }
        let f = try HessianFactor(gram: h, cols: cols, damping: 0.01)
        let w = randomMatrix(rows: rows, cols: cols, seed: 7)
        for s in schemes {
            let a = encodeDecode(w, scheme: s, encoder: nil)
            let b = encodeDecode(w, scheme: s, encoder: GPTQEncoder(factor: f, blockSize: 16))
            XCTAssertEqual(a.codes, b.codes, "\(s)")
            XCTAssertEqual(a.scales.map(\.bitPattern), b.scales.map(\.bitPattern), "\(s)")
            XCTAssertEqual(a.zeros, b.zeros, "\(s)")
        }
    }

    func testClipSearchWithOnlyFullRangeIsRoundToNearestBitForBit() {
        let w = randomMatrix(rows: rows, cols: cols, seed: 8)
        for s in schemes {
            let a = encodeDecode(w, scheme: s, encoder: nil)
            let b = encodeDecode(w, scheme: s, encoder: ClipSearchEncoder(importance: [Float](repeating: 1, count: cols), clips: [1]))
            XCTAssertEqual(a.codes, b.codes, "\(s)")
            XCTAssertEqual(a.scales.map(\.bitPattern), b.scales.map(\.bitPattern), "\(s)")
        }
    }

    func testGPTQCutsOutputErrorOnCorrelatedInputs() throws {
        let n = 512
        let x = inputs(n, seed: 3)
        let h = gram(x, n: n)
        let f = try HessianFactor(gram: h, cols: cols, damping: 0.01)
        let w = randomMatrix(rows: rows, cols: cols, seed: 9)
        for s in schemes {
            let rtn = outputError(w, encodeDecode(w, scheme: s, encoder: nil).values, h)
            let gptq = outputError(w, encodeDecode(w, scheme: s, encoder: GPTQEncoder(factor: f, blockSize: 16)).values, h)
            XCTAssertLessThan(gptq, 0.6 * rtn, "\(s): GPTQ \(gptq) vs RTN \(rtn)")
        }
    }

    func testClipSearchNeverWorseThanRoundToNearestOnItsObjective() {
        let n = 256
        let x = inputs(n, seed: 4)
        var imp = [Float](repeating: 0, count: cols)
        for r in 0..<n { for j in 0..<cols { imp[j] += x[r * cols + j] * x[r * cols + j] / Float(n) } }
        var diag = [Float](repeating: 0, count: cols * cols)
        for j in 0..<cols { diag[j * cols + j] = imp[j] }
        let w = randomMatrix(rows: rows, cols: cols, seed: 10)
        for s in schemes {
            let rtn = outputError(w, encodeDecode(w, scheme: s, encoder: nil).values, diag)
            let mse = outputError(w, encodeDecode(w, scheme: s, encoder: ClipSearchEncoder(importance: imp)).values, diag)
            XCTAssertLessThanOrEqual(mse, rtn * (1 + 1e-6), "\(s)")
            if s.int4 != nil { XCTAssertLessThan(mse, 0.97 * rtn, "\(s): clipping should pay on outlier-heavy rows") }
        }
    }

    func testHessianFactorInvertsExactly() throws {
        let n = 300
        let x = inputs(n, seed: 5)
        let h = gram(x, n: n)
        let f = try HessianFactor(gram: h, cols: cols, damping: 0.01)
        // (H + λI) · UᵀU = I
        var mean = 0.0
        for i in 0..<cols { mean += Double(h[i * cols + i]) }
        mean /= Double(cols)
        var maxErr = 0.0
        for i in 0..<cols {
            for j in 0..<cols {
                var s = 0.0
                for k in 0..<cols {
                    var hinv = 0.0   // (UᵀU)[k, j]
                    for m in 0...min(k, j) { hinv += Double(f.upper[m * cols + k]) * Double(f.upper[m * cols + j]) }
                    s += (Double(h[i * cols + k]) + (i == k ? 0.01 * mean : 0)) * hinv
                }
                maxErr = max(maxErr, abs(s - (i == j ? 1 : 0)))
            }
        }
        XCTAssertLessThan(maxErr, 1e-3)
    }

    func testSingularHessianStillFactorsWithDeadChannels() throws {
        var h = [Float](repeating: 0, count: cols * cols)   // every channel dead
        h[0] = 1
        let f = try HessianFactor(gram: h, cols: cols)
        XCTAssertTrue(f.upper.allSatisfy { $0.isFinite })
    }
}

extension CalibratedEncoderTests {
    func testActOrderGPTQAlsoCutsOutputErrorAndKeepsLayouts() throws {
        let n = 512
        let x = inputs(n, seed: 11)
        let h = gram(x, n: n)
        let f = try HessianFactor(gram: h, cols: cols, damping: 0.01, actOrder: true)
        XCTAssertEqual(f.order.map { Set($0) }, Set(0..<cols))
        let w = randomMatrix(rows: rows, cols: cols, seed: 12)
        for s in schemes {
            let a = encodeDecode(w, scheme: s, encoder: GPTQEncoder(factor: f, blockSize: 16))
            XCTAssertTrue(a.values.allSatisfy(\.isFinite))
            XCTAssertLessThan(outputError(w, a.values, h), 0.6 * outputError(w, encodeDecode(w, scheme: s, encoder: nil).values, h), "\(s)")
        }
        // With a unit Hessian nothing is compensated, so act-order with static groups is round to nearest.
        var unit = [Float](repeating: 0, count: cols * cols)
        for i in 0..<cols { unit[i * cols + i] = Float(1 + i % 3) }
        let fu = try HessianFactor(gram: unit, cols: cols, actOrder: true)
        for s in schemes {
            XCTAssertEqual(encodeDecode(w, scheme: s, encoder: nil).codes, encodeDecode(w, scheme: s, encoder: GPTQEncoder(factor: fu)).codes, "\(s)")
        }
    }
}
