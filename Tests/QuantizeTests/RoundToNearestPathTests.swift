import XCTest
import Formats
@testable import Quantize
import TestSupport

/// The converter's round-to-nearest path (row blocks widened and encoded per worker, chunks
/// written while the next is encoded) must store exactly what the whole-chunk SegmentEncoder
/// path stores with `SegmentCodec.encode`, for every scheme, whatever the chunking.
final class RoundToNearestPathTests: XCTestCase {
    struct PassThrough: SegmentEncoder {
        func encode(_ w: UnsafeMutablePointer<Float>, rows n: Int, cols: Int, segment: TensorPlan.Segment, firstRow: Int,
                    blockScales: [Float]?, codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?,
                    zeroPoints: UnsafeMutablePointer<UInt8>?) {
            SegmentCodec.encode(w, rows: n, cols: cols, segment: segment, firstRow: firstRow, blockScales: blockScales,
                                codes: codes, scales: scales, zeroPoints: zeroPoints)
        }
    }

    func testSameSectionsAsTheEncoderPath() throws {
        var u = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { u.deleteLastPathComponent() }
        let map = try TensorMap(checkpoint: try Checkpoint(path: u.path + "/fixtures/nemotron-h-tiny-moe"))
        let dir = NSTemporaryDirectory() + "nemo-rtn-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let recipes: [Recipe] = [
            .builtin(.int4), .builtin(.fp8), .builtin(.mixed), .builtin(.int8), .builtin(.mxfp4), .builtin(.nvfp4),
            Recipe(name: "asym", defaultScheme: .int4(group: 48, symmetric: false)),
            Recipe(name: "fp8c", defaultScheme: .fp8Channel, rules: [.init(role: .lmHead, scheme: "fp8-tensor")]),
        ]
        for recipe in recipes {
            // Small chunks: many chunks per tensor, several row blocks per worker, odd splits.
            for (chunk, threads) in [(48 << 10, 2), (1 << 20, 3)] {
                var files: [PackedFile] = []
                for encoder in [nil, PassThrough()] as [SegmentEncoder?] {
                    let c = Converter(map: map, recipe: recipe)
                    c.chunkBytes = chunk
                    c.threads = threads
                    let out = dir + "/\(recipe.name)-\(encoder == nil ? "rtn" : "enc").nemo"
                    let w = try PackedWriter(path: out)
                    for (t, p) in try c.plans() { _ = try c.writeTensor(t, p, to: w, encoder: encoder) }
                    try c.finish(w, metadata: ["model": try JSONParser.parse(try MappedFile.contents(of: u.path + "/fixtures/nemotron-h-tiny-moe/config.json"))], blobs: [])
                    files.append(try PackedFile(path: out))
                }
                for t in files[0].tensors {
                    let other = try XCTUnwrap(files[1].tensor(t.name))
                    XCTAssertEqual(Set(t.sections.keys), Set(other.sections.keys), t.name)
                    for (k, s) in t.sections {
                        let a = try files[0].bytes(s, owner: k), b = try files[1].bytes(other.sections[k]!, owner: k)
                        XCTAssertTrue(a == b, "\(recipe.name) chunk \(chunk): \(t.name) (\(k)) differs")
                    }
                }
            }
        }
    }
}

import Foundation
