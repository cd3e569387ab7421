import XCTest
import Formats
import Quantize
import TestSupport

/// `inspect` of packed files: the scheme and scale layout of known tensors, and `--verify`
/// naming the damaged tensor and section (library and CLI exit code).
final class InspectPackedTests: ScratchDirectoryTestCase {
    func makePack(_ recipe: String) throws -> String {
        let ck = try Checkpoint(path: Fixtures.model("nemotron-h-tiny-moe"))
        let out = dir + "/moe-\(recipe).nemo"
        _ = try Converter(map: try TensorMap(checkpoint: ck), recipe: try Recipe.load(recipe))
            .convert(to: out, metadata: ["model": try JSONParser.parse(ck.configBytes),
                                         "producer": ["name": "nemo-convert", "version": "test"]], blobs: [])
        return out
    }

    func testInt4PackListsSchemesAndScaleLayouts() throws {
        let p = try PackedInspection(file: PackedFile(path: try makePack("int4")))
        func tensor(_ n: String) throws -> PackedInspection.Tensor { try XCTUnwrap(p.tensors.first { $0.name == n }, n) }

        // tiny-moe: I = 8 heads × 32 = 256, G·N = 2 × 32 = 64, 8 dt rows; hidden 256.
        let inProj = try tensor("backbone.layers.0.mixer.in_proj.weight")
        XCTAssertEqual(inProj.scheme, "int4-g128-sym+bf16")
        XCTAssertEqual(inProj.segments.map(\.name), ["z", "x", "B", "C", "dt"])
        XCTAssertEqual(inProj.segments.map(\.rows), [0..<256, 256..<512, 512..<576, 576..<640, 640..<648])
        XCTAssertEqual(inProj.segments.map(\.scheme.description),
                       ["int4-g128-sym", "int4-g128-sym", "int4-g128-sym", "int4-g128-sym", "bf16"])
        XCTAssertEqual(inProj.segments[0].layout, "scales [256, 2] per group of 128 cols")
        XCTAssertEqual(inProj.segments[2].layout, "scales [64, 2] per group of 128 cols")
        XCTAssertEqual(inProj.segments[4].layout, "no scales, raw")   // matrices stay mappable
        XCTAssertEqual(inProj.segments[0].storedBytes, 256 * 128 + 256 * 2 * 4)

        let up = try tensor("backbone.layers.1.mixer.experts.3.up_proj.weight")
        XCTAssertEqual(up.expert, 3)
        XCTAssertEqual(up.segments.map(\.layout), ["scales [128, 2] per group of 128 cols"])
        XCTAssertEqual(up.storedBytes, 128 * 128 + 128 * 2 * 4)
        XCTAssertEqual(up.bitsPerWeight, 4.25, accuracy: 1e-9)   // 4 + 32 bits per 128 weights
        XCTAssertEqual(up.compression, Double(128 * 256 * 2) / Double(up.storedBytes), accuracy: 1e-9)
        let down = try tensor("backbone.layers.1.mixer.experts.3.down_proj.weight")
        XCTAssertEqual(down.segments.map(\.layout), ["scales [256, 1] per group of 128 cols"])

        // out_proj groups follow heads (head_dim 32); lm_head stays INT8 per row.
        XCTAssertEqual(try tensor("backbone.layers.0.mixer.out_proj.weight").segments[0].layout,
                       "scales [256, 8] per group of 32 cols")
        let head = try tensor("lm_head.weight")
        XCTAssertEqual(head.scheme, "int8")
        XCTAssertEqual(head.segments[0].layout, "scales [4096] per row")
        XCTAssertEqual(try tensor("backbone.layers.1.mixer.gate.weight").scheme, "f32")

        XCTAssertEqual(p.recipe?["name"]?.stringValue, "int4")
        XCTAssertEqual(p.producer?["version"]?.stringValue, "test")
        XCTAssertEqual(p.stats.parameters, 10_932_880)   // as inspect counts the source checkpoint
        XCTAssertEqual(p.bitsPerWeight, 5.870, accuracy: 0.001)   // what convert reports
        let emb = try tensor("backbone.embeddings.weight")
        XCTAssertEqual(emb.segments[0].layout, "no scales, raw")   // rows are read in place
    }

    func testFP8TensorScalesFollowHeadsAndGroups() throws {
        let p = try PackedInspection(file: PackedFile(path: try makePack("fp8")))
        let inProj = try XCTUnwrap(p.tensors.first { $0.name == "backbone.layers.0.mixer.in_proj.weight" })
        let layouts = Dictionary(uniqueKeysWithValues: inProj.segments.map { ($0.name, $0) })
        if layouts["z"]?.scheme == .fp8Tensor {
            XCTAssertEqual(layouts["z"]?.layout, "scales [8] one per SSM head (32 rows)")
            XCTAssertEqual(layouts["B"]?.layout, "scales [2] one per B/C group (32 rows)")
        } else {
            XCTAssertEqual(layouts["z"]?.layout, "scales [256] per row")
        }
    }

    func testFlippedByteIsReportedForItsTensorAndSectionOnly() throws {
        let path = try makePack("int4")
        XCTAssertTrue(PackedVerification.run(try PackedFile(path: path), threads: 2).ok)
        let name = "backbone.layers.0.mixer.in_proj.weight"
        let s = try XCTUnwrap(try PackedFile(path: path).tensor(name)?.sections["x.scales"])
        var bytes = try MappedFile.contents(of: path)
        bytes[s.offset + 5] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let v = PackedVerification.run(try PackedFile(path: path), threads: 2)
        XCTAssertFalse(v.ok)
        XCTAssertEqual(v.failures.map(\.name), [name])
        let m = "\(try XCTUnwrap(v.firstFailure))"
        XCTAssertTrue(m.hasPrefix(path) && m.contains("tensor '\(name) (x.scales)': checksum mismatch"), m)
        XCTAssertEqual(v.json["first_failure"]?.stringValue, m)
    }

    func testCLIVerifyExitsWith65OnCorruption() throws {
        let path = try makePack("int4")
        XCTAssertEqual(try CLIRunner.run(["inspect", path, "--verify", "--json"]).status, 0)
        let s = try XCTUnwrap(try PackedFile(path: path).tensor("lm_head.weight")?.sections["codes"])
        var bytes = try MappedFile.contents(of: path)
        bytes[s.offset + s.length - 1] ^= 0x80
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r = try CLIRunner.run(["inspect", path, "--verify", "--json"])
        XCTAssertEqual(r.status, 65)
        let json = try JSONParser.parse(Array(r.stdout.utf8))
        XCTAssertEqual(json["verify"]?["ok"]?.boolValue, false)
        XCTAssertTrue(json["verify"]?["first_failure"]?.stringValue?.contains("'lm_head.weight (codes)'") == true)
    }

    func testCheckpointScanCountsNonFiniteValuesPerTensor() throws {
        let src = Fixtures.model("nemotron-h-tiny-moe")
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: src + "/" + f, toPath: dir + "/" + f)
        }
        XCTAssertTrue(CheckpointScan.run(try Checkpoint(path: dir), threads: 2).ok)
        let name = "backbone.layers.2.mixer.out_proj.weight"
        let info = try XCTUnwrap(try SafetensorsFile(path: dir + "/model.safetensors").info(name))
        XCTAssertEqual(info.dtype, .bf16)
        let at = info.offset
        var bytes = try MappedFile.contents(of: dir + "/model.safetensors")
        for (k, v) in [(0, UInt16(0x7FC0)), (7, 0xFF80), (9, 0x7F80)] {   // NaN, -inf, +inf
            bytes[at + 2 * k] = UInt8(v & 0xFF); bytes[at + 2 * k + 1] = UInt8(v >> 8)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        let scan = CheckpointScan.run(try Checkpoint(path: dir), threads: 2)
        XCTAssertFalse(scan.ok)
        XCTAssertEqual(scan.damaged.map(\.name), [name])
        XCTAssertEqual(scan.damaged.first?.nan, 1)
        XCTAssertEqual(scan.damaged.first?.infinite, 2)
        XCTAssertEqual(scan.items.count, 289)
    }
}

import Foundation
