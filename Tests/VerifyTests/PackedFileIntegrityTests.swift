import XCTest
import Calibrate
import Model
import Formats
import Quantize
import TestSupport

/// Corrupt, truncated and interrupted packed files fail loudly and name what is wrong.
final class PackedFileIntegrityTests: ScratchDirectoryTestCase {
    func makePack(_ recipe: String = "int4") throws -> String {
        let ck = try Checkpoint(path: Fixtures.model("nemotron-h-tiny-moe"))
        let out = dir + "/moe.nemo"
        _ = try Converter(map: try TensorMap(checkpoint: ck), recipe: try Recipe.load(recipe))
            .convert(to: out, metadata: ["model": try JSONParser.parse(ck.configBytes)], blobs: [])
        return out
    }

    func testFlippedPayloadByteIsAChecksumErrorNamingTheTensor() throws {
        let path = try makePack()
        let pf = try PackedFile(path: path)
        let t = try XCTUnwrap(pf.tensor("backbone.layers.1.mixer.experts.3.up_proj.weight"))
        let s = try XCTUnwrap(t.sections["codes"])
        var bytes = try MappedFile.contents(of: path)
        bytes[s.offset + s.length / 2] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let w = try PackedWeights(path: path)
        let buf = FloatBuffer(count: 128 * 256)
        XCTAssertThrowsError(try w.load(.expertUp, layer: 1, expert: 3, into: buf.pointer)) { e in
            let m = "\(e)"
            XCTAssertTrue(m.hasPrefix(path) && m.contains("tensor 'backbone.layers.1.mixer.experts.3.up_proj.weight (codes)': checksum mismatch"), m)
        }
        XCTAssertThrowsError(try PackedFile(path: path).verify()) { e in
            XCTAssertTrue("\(e)".contains("experts.3.up_proj.weight"), "\(e)")
        }
        // Other tensors still read.
        XCTAssertNoThrow(try w.load(.expertUp, layer: 1, expert: 4, into: buf.pointer))
    }

    func testTruncatedFileIsAClearError() throws {
        let path = try makePack()
        let bytes = try MappedFile.contents(of: path)
        for cut in [bytes.count - 1, bytes.count / 2, 100, 10] {
            try Data(bytes[0..<cut]).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try PackedFile(path: path)) { e in
                let m = "\(e)"
                XCTAssertTrue(m.hasPrefix(path) && (m.contains("truncated") || m.contains("too short")), m)
            }
        }
    }

    func testFailedConvertLeavesNoOutput() throws {
        let ck = try Checkpoint(path: Fixtures.model("nemotron-h-tiny-moe"))
        let out = dir + "/never.nemo"
        // A recipe naming a scheme that does not exist fails mid-plan.
        let bad = Recipe(name: "bad", defaultScheme: .int8Channel, rules: [.init(role: .expertDown, scheme: "int3")])
        XCTAssertThrowsError(try Converter(map: try TensorMap(checkpoint: ck), recipe: bad)
            .convert(to: out, metadata: [:], blobs: []))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }
}

import Foundation
