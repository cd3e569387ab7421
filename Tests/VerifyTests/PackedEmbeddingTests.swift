import XCTest
import Calibrate
import Model
import Formats
import Quantize
import TestSupport

/// The embedding is stored raw and looked up row by row in place; rows must equal the ones a
/// whole-tensor decode gives, for every scheme an embedding may be stored in.
final class PackedEmbeddingTests: XCTestCase {
    func testRowsDecodedInPlaceMatchTheWholeTensor() throws {
        let dir = NSTemporaryDirectory() + "nemo-embedding-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ck = try Checkpoint(path: Fixtures.model("nemotron-h-tiny-moe"))
        let map = try TensorMap(checkpoint: ck)
        let (v, h) = (map.config.vocabSize, map.config.hiddenSize)
        let ids: [Int32] = [0, 1, 7, 4095, 1234, 7]
        for scheme in ["keep", "int8", "int4-g64-asym", "int4-g96-sym", "fp8-tensor", "fp8-channel"] {
            let recipe = Recipe(name: "t", defaultScheme: .int8Channel, rules: [.init(role: .embedding, scheme: scheme)])
            let out = dir + "/\(scheme).nemo"
            _ = try Converter(map: map, recipe: recipe).convert(to: out, metadata: ["model": try JSONParser.parse(ck.configBytes)], blobs: [])
            let w = try PackedWeights(path: out)
            let sections = try XCTUnwrap(w.file.tensor("backbone.embeddings.weight")?.sections)
            XCTAssertTrue(sections.values.allSatisfy { $0.encoding == .raw }, scheme)
            let whole = FloatBuffer(count: v * h)
            try w.load(.embedding, layer: nil, expert: nil, into: whole.pointer)
            let rows = FloatBuffer(count: ids.count * h)
            try ids.withUnsafeBufferPointer { try w.embeddingRows($0, into: rows.pointer) }
            for (i, id) in ids.enumerated() {
                for j in 0..<h where rows.pointer[i * h + j].bitPattern != whole.pointer[Int(id) * h + j].bitPattern {
                    XCTFail("\(scheme): token \(id) column \(j): \(rows.pointer[i * h + j]) vs \(whole.pointer[Int(id) * h + j])")
                    break
                }
            }
            XCTAssertThrowsError(try [Int32(v)].withUnsafeBufferPointer { try w.embeddingRows($0, into: rows.pointer) })
        }
    }
}

import Foundation
