import XCTest
import Foundation
import Formats
import Verify
import TestSupport

/// Issue 10, item 13: verify says when the original it is given is not the pack's source.
final class SourceCheckTests: ScratchDirectoryTestCase {
    let text = Fixtures.text("kjv-heldout.txt")

    /// Flips one bit of one tensor's data in a copy of the model; returns the tensor's name.
    func alter(_ model: String) throws -> String {
        let path = model + "/model.safetensors"
        var b = try XCTUnwrap(contents(path))
        let f = try SafetensorsFile(path: path)
        let t = try XCTUnwrap(f.tensors.first { $0.name.hasSuffix("in_proj.weight") })
        b[t.offset] ^= 0x40
        try b.write(to: URL(fileURLWithPath: path))
        return t.name
    }

    func testVerifyAgainstAnotherCheckpointIsRefusedByName() throws {
        let m = try copyModel(), other = try copyModel(to: "other")
        let packed = dir + "/int8.nemo"
        XCTAssertEqual(try CLIRunner.run(["convert", m, "-o", packed, "--recipe", "int8"]).status, 0)
        let pf = try PackedFile(path: packed)
        XCTAssertTrue(pf.tensors.allSatisfy { $0.attributes["source_xxh64"] != nil }, "every tensor records its source hash")
        let name = try alter(other)

        let n = pf.tensors.count
        let msg = "\(other) is not the checkpoint \(packed) was converted from: 1 of \(n) tensors differ (first: '\(name)'); the comparison would measure the difference between two models, not quantization"
        var r = try CLIRunner.run(["verify", other, packed, "--text", text, "--max-windows", "1"])
        XCTAssertEqual(r.status, 65)
        XCTAssertEqual(r.stderr, "error: \(msg) (--allow-different-source compares them anyway)\n")
        r = try CLIRunner.run(["verify", other, packed, "--text", text, "--max-windows", "1", "--allow-different-source", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "warning: \(msg)\n")
        let j = try JSONParser.parse(Array(r.stdout.utf8))
        XCTAssertEqual(j["source_check"]?["differing"]?.intValue, 1)
        // The true source passes.
        r = try CLIRunner.run(["verify", m, packed, "--text", text, "--max-windows", "1", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try JSONParser.parse(Array(r.stdout.utf8))["source_check"]?["matches"]?.boolValue, true)
    }
}
