import Foundation
import XCTest
@testable import Quantize
import TestSupport

final class QuantSchemeTests: XCTestCase {
    func testSpellingRoundTrips() {
        let cases: [(QuantScheme, String)] = [
            (.int8Channel, "int8"), (.int4(group: 128, symmetric: true), "int4-g128-sym"),
            (.int4(group: 64, symmetric: false), "int4-g64-asym"), (.int4(group: 32, symmetric: true), "int4-g32-sym"),
            (.fp8Tensor, "fp8-tensor"), (.fp8Channel, "fp8-channel"), (.bf16, "bf16"), (.f16, "f16"), (.f32, "f32"),
        ]
        for (scheme, text) in cases {
            XCTAssertEqual(scheme.description, text)
            XCTAssertEqual(QuantScheme(text), scheme)
        }
        // reference.json's baseline names
        XCTAssertEqual(QuantScheme("int8-channel"), .int8Channel)
        XCTAssertEqual(QuantScheme("int4-g32"), .int4(group: 32, symmetric: true))
        XCTAssertEqual(QuantScheme("INT4-G128-ASYM"), .int4(group: 128, symmetric: false))
        for bad in ["", "int4", "int4-g", "int4-g0-sym", "int4-g-64", "int4-g+64", "int4-gx", "int4-g64-",
                    "int4-g64-foo", "int4-g64-sym-x", "int4-g99999999999999999999", "fp8", "int8-tensor", "bf 16"] {
            XCTAssertNil(QuantScheme(bad), bad)
        }
    }

    /// Issue 10 §10: one INT4 group limit for writer and reader, so every pack written reads back.
    func testGroupSizeLimitIsTheSameForWriterAndReader() throws {
        let m = QuantScheme.maxInt4Group
        XCTAssertEqual(m, 16_777_216)
        XCTAssertEqual(QuantScheme(QuantScheme.int4(group: m, symmetric: false).description), .int4(group: m, symmetric: false))
        XCTAssertEqual(try Recipe.load("int4", groupSize: m).defaultScheme, .int4(group: m, symmetric: true))
        XCTAssertNil(QuantScheme("int4-g\(m + 1)-sym"))
        XCTAssertNil(QuantScheme("int4-g999999999-sym"), "accepted by the old reader, never writable")
        for g in [0, m + 1, 1_000_000_000, Int.max] {
            XCTAssertThrowsError(try Recipe.load("int4", groupSize: g)) { e in
                XCTAssertEqual("\(e)", "group size \(g) is outside 1...16777216")
            }
            XCTAssertThrowsError(try Recipe.load("mixed", groupSize: g))
        }
    }

    func testCodableUsesTheSpelling() throws {
        let schemes: [QuantScheme] = [.int4(group: 64, symmetric: false), .fp8Tensor, .bf16]
        let data = try JSONEncoder().encode(schemes)
        XCTAssertEqual(String(decoding: data, as: UTF8.self), #"["int4-g64-asym","fp8-tensor","bf16"]"#)
        XCTAssertEqual(try JSONDecoder().decode([QuantScheme].self, from: data), schemes)
        XCTAssertThrowsError(try JSONDecoder().decode([QuantScheme].self, from: Data(#"["int3"]"#.utf8)))
    }

    func testBitsPerWeight() {
        let rows = 2688, cols = 1856  // Nemotron-3-Nano expert: 1856 = 14.5 · 128 = 29 · 64
        let n = Double(rows * cols)
        func bpw(_ s: QuantScheme) -> Double { s.bitsPerWeight(rows: rows, cols: cols) }
        XCTAssertEqual(bpw(.int4(group: 128, symmetric: true)), 4 + 15.0 * 32 / 1856, accuracy: 1e-12)
        XCTAssertEqual(bpw(.int4(group: 128, symmetric: true)), 4.258620689655, accuracy: 1e-9)
        XCTAssertEqual(bpw(.int4(group: 64, symmetric: true)), 4.5, accuracy: 1e-12)
        XCTAssertEqual(bpw(.int4(group: 64, symmetric: false)), 4 + 29.0 * 40 / 1856, accuracy: 1e-12)
        XCTAssertEqual(bpw(.int4(group: 32, symmetric: true)), 5, accuracy: 1e-12)
        XCTAssertEqual(bpw(.int8Channel), 8 + 32.0 / 1856, accuracy: 1e-12)
        XCTAssertEqual(bpw(.fp8Channel), 8 + 32.0 / 1856, accuracy: 1e-12)
        XCTAssertEqual(bpw(.fp8Tensor), 8 + 32 / n, accuracy: 1e-12)
        XCTAssertEqual(bpw(.bf16), 16)
        XCTAssertEqual(bpw(.f16), 16)
        XCTAssertEqual(bpw(.f32), 32)
        // an odd width pays for the padding nibble: [1, 5] with group 4 → 3 bytes + 2 scales
        XCTAssertEqual(QuantScheme.int4(group: 4, symmetric: true).bitsPerWeight(rows: 1, cols: 5),
                       Double(3 * 8 + 2 * 32) / 5)

        let layout = QuantScheme.int4(group: 128, symmetric: false).layout(rows: rows, cols: cols)
        XCTAssertEqual(layout, QuantLayout(codeBytes: rows * 928, codeBytesPerRow: 928, scaleCount: rows * 15,
                                           zeroPointCount: rows * 15, groupsPerRow: 15))
        XCTAssertEqual(QuantScheme.int4(group: 64, symmetric: true).payloadBits, 4)
        XCTAssertEqual(QuantScheme.fp8Tensor.payloadBits, 8)
    }
}
