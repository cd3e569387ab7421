import XCTest
@testable import Quantize
import TestSupport

final class QuantizedTensorTests: XCTestCase {
    static let schemes: [QuantScheme] = [
        .int8Channel, .int4(group: 128, symmetric: true), .int4(group: 32, symmetric: true),
        .int4(group: 64, symmetric: false), .int4(group: 7, symmetric: false), .fp8Tensor, .fp8Channel,
        .bf16, .f16, .f32,
    ]

    func testDequantizeEqualsFakeQuantForEveryScheme() {
        let rows = 23, cols = 203  // odd width, partial groups
        let w = randomMatrix(rows: rows, cols: cols, seed: 42, zeroRow: 5)
        for scheme in Self.schemes {
            let q = quantize(w, rows: rows, cols: cols, scheme: scheme)
            let layout = scheme.layout(rows: rows, cols: cols)
            XCTAssertEqual(q.codes.count, layout.codeBytes, "\(scheme)")
            XCTAssertEqual(q.scales.count, layout.scaleCount, "\(scheme)")
            XCTAssertEqual(q.zeroPoints.count, layout.zeroPointCount, "\(scheme)")
            let out = q.dequantized()
            var fake = w
            FakeQuant.apply(&fake, rows: rows, cols: cols, scheme: scheme)
            XCTAssertEqual(bitPatterns(out), bitPatterns(fake), "\(scheme)")
            XCTAssertTrue(out.allSatisfy(\.isFinite), "\(scheme)")
            XCTAssertTrue(q.scales.allSatisfy { $0.isFinite && $0 > 0 }, "\(scheme)")
            if scheme == .f32 { XCTAssertEqual(out, w) }

            // rows decoded one block at a time give the same matrix
            var pieces = [Float](repeating: .nan, count: rows * cols)
            pieces.withUnsafeMutableBufferPointer { p in
                q.dequantize(rows: 0..<7, into: p.baseAddress!)
                q.dequantize(rows: 7..<rows, into: p.baseAddress!)
            }
            XCTAssertEqual(bitPatterns(pieces), bitPatterns(out), "\(scheme)")

            // rebuilt from its buffers, as read back from a file
            let copy = QuantizedTensor(scheme: scheme, rows: rows, cols: cols, codes: q.codes, scales: q.scales,
                                       zeroPoints: q.zeroPoints)
            XCTAssertEqual(copy, q)
        }
    }

    func testRowRangeEncodingEqualsWholeTensor() {
        let rows = 19, cols = 150
        let w = randomMatrix(rows: rows, cols: cols, seed: 7)
        for scheme in Self.schemes {
            let whole = quantize(w, rows: rows, cols: cols, scheme: scheme)
            let layout = scheme.layout(rows: rows, cols: cols)
            var codes = [UInt8](repeating: 0, count: layout.codeBytes)
            var scales = [Float](repeating: 0, count: layout.scaleCount)
            var zps = [UInt8](repeating: 0, count: layout.zeroPointCount)
            let tensorScale = FP8E4M3.scale(absMax: max(FP8E4M3.absMax(w, count: 10 * cols),
                                                        FP8E4M3.absMax(Array(w[(10 * cols)...]), count: 9 * cols)))
            codes.withUnsafeMutableBytes { c in
                scales.withUnsafeMutableBufferPointer { s in
                    zps.withUnsafeMutableBufferPointer { z in
                        for range in [10..<rows, 0..<4, 4..<10] {
                            Codec.encode(w, cols: cols, rows: range, scheme: scheme, codes: c.baseAddress!,
                                         scales: s.baseAddress, zeroPoints: z.baseAddress, tensorScale: tensorScale)
                        }
                    }
                }
            }
            XCTAssertEqual(codes, whole.codes, "\(scheme)")
            XCTAssertEqual(scales, whole.scales, "\(scheme)")
            XCTAssertEqual(zps, whole.zeroPoints, "\(scheme)")

            var fake = w
            fake.withUnsafeMutableBufferPointer { f in
                FakeQuant.apply(f.baseAddress!, cols: cols, rows: 12..<rows, scheme: scheme, tensorScale: tensorScale)
                FakeQuant.apply(f.baseAddress!, cols: cols, rows: 0..<12, scheme: scheme, tensorScale: tensorScale)
            }
            XCTAssertEqual(bitPatterns(fake), bitPatterns(whole.dequantized()), "\(scheme)")
        }
    }

    /// Routed experts [experts, out, in] quantized as one [experts · out, in] matrix share the
    /// fp8-tensor scale, as in reference.json's baseline.
    func testStackedExpertsShareOneFP8Scale() {
        let experts = 4, out = 6, cols = 32
        var w = randomMatrix(rows: experts * out, cols: cols, seed: 11)
        w[3 * out * cols + 5] = 4.48  // expert 3 holds the tensor's absmax
        let q = quantize(w, rows: experts * out, cols: cols, scheme: .fp8Tensor)
        XCTAssertEqual(q.scales, [Float(4.48) / 448])
        XCTAssertEqual(q.codes[3 * out * cols + 5], 0x7E)
    }

    func testZeroConstantAndTinyInputsStayFinite() {
        let rows = 3, cols = 70
        let inputs: [(String, [Float])] = [
            ("zero", [Float](repeating: 0, count: rows * cols)),
            ("negative zero", [Float](repeating: -0.0, count: rows * cols)),
            ("constant", [Float](repeating: 0.7, count: rows * cols)),
            ("negative constant", [Float](repeating: -3, count: rows * cols)),
            ("subnormal", [Float](repeating: 1e-41, count: rows * cols)),
        ]
        for (name, w) in inputs {
            for scheme in Self.schemes {
                let q = quantize(w, rows: rows, cols: cols, scheme: scheme)
                let out = q.dequantized()
                XCTAssertTrue(q.scales.allSatisfy { $0.isFinite && $0 > 0 }, "\(name) \(scheme)")
                XCTAssertTrue(out.allSatisfy(\.isFinite), "\(name) \(scheme)")
                for (a, b) in zip(out, w) {
                    XCTAssertEqual(a, b, accuracy: max(abs(b) * 0.07, 1e-40), "\(name) \(scheme)")
                }
                if name == "zero" {
                    XCTAssertTrue(out.allSatisfy { $0 == 0 }, "\(scheme)")
                    if scheme != .bf16 && scheme != .f16 && scheme != .f32 {
                        XCTAssertTrue(q.scales.allSatisfy { $0 == 1 }, "\(scheme)")
                        XCTAssertTrue(q.codes.allSatisfy { $0 == 0 }, "\(scheme)")
                    }
                }
            }
        }
    }

    func testEmptyTensors() {
        for scheme in Self.schemes {
            let q = quantize([], rows: 0, cols: 16, scheme: scheme)
            XCTAssertEqual(q.dequantized(), [])
            XCTAssertEqual(q.bitsPerWeight, 0)
        }
    }
}
