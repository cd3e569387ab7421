import XCTest
import Foundation
import Formats
import Quantize
import Verify
import TestSupport

/// The verify and footprint subcommands as scripts see them: exit codes, the --json shape, the
/// plot file. Runs the nemo-convert binary built next to this test bundle.
final class VerifyCommandTests: ScratchDirectoryTestCase {
    func run(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) { try CLIRunner.run(args) }

    let moe = Fixtures.model("nemotron-h-tiny-moe")
    let text = Fixtures.text("kjv-heldout.txt")

    func testJSONShapeAndPlot() throws {
        let packed = dir + "/int8.nemo"
        XCTAssertEqual(try run(["convert", moe, "-o", packed, "--recipe", "int8", "--json"]).status, 0)
        let plot = dir + "/err.svg"
        let r = try run(["verify", moe, packed, "--text", text, "--max-windows", "2", "--json", "--plot", plot,
                         "--max-kld", "0.5", "--min-top1", "0.5", "--max-ppl-ratio", "1.5"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "", "no progress output with --json")
        let j = try JSONParser.parse(Array(r.stdout.utf8))
        // The fields issue 6 specifies.
        XCTAssertNotNil(j["original"]?["ppl"]?.doubleValue)
        XCTAssertNotNil(j["quantized"]?["ppl"]?.doubleValue)
        XCTAssertNotNil(j["ppl_ratio"]?.doubleValue)
        for k in ["mean", "median", "p99", "max"] { XCTAssertNotNil(j["kld"]?[k]?.doubleValue, k) }
        XCTAssertNotNil(j["top1_agreement"]?.doubleValue)
        XCTAssertEqual(j["tokens_scored"]?.intValue, 510)
        let layers = try XCTUnwrap(j["layers"]?.arrayValue)
        XCTAssertEqual(layers.count, 14)
        XCTAssertEqual(layers[1]["kind"]?.stringValue, "moe")
        XCTAssertEqual(layers[5]["index"]?.intValue, 5)
        XCTAssertNotNil(layers[5]["rel_error"]?.doubleValue)
        XCTAssertEqual(j["passed"]?.boolValue, true)
        let svg = try String(contentsOfFile: plot, encoding: .utf8)
        XCTAssertEqual(svg.components(separatedBy: "class=\"layer\"").count - 1, 14)

        // The perplexity command gives the quantized model the same ppl.
        let p = try run(["perplexity", packed, "--text", text, "--max-windows", "2", "--json"])
        XCTAssertEqual(try JSONParser.parse(Array(p.stdout.utf8))["ppl"]?.doubleValue, j["quantized"]?["ppl"]?.doubleValue)
    }

    func testFailedThresholdExitsWith3AndNamesIt() throws {
        let packed = dir + "/int4.nemo"
        XCTAssertEqual(try run(["convert", moe, "-o", packed, "--recipe", "int4"]).status, 0)
        let r = try run(["verify", moe, packed, "--text", text, "--max-windows", "1", "--max-kld", "1e-9", "--max-ppl-ratio", "10"])
        XCTAssertEqual(r.status, 3)
        XCTAssertTrue(r.stderr.contains("--max-kld"), r.stderr)
        XCTAssertFalse(r.stderr.contains("--max-ppl-ratio"), r.stderr)
        XCTAssertTrue(r.stdout.contains("KL divergence"), "the table is still printed")
        let s = try run(["verify", moe, packed, "--text", text, "--max-windows", "1", "--min-top1", "1", "--json"])
        XCTAssertEqual(s.status, 3)
        XCTAssertTrue(s.stderr.contains("--min-top1"), s.stderr)
        XCTAssertEqual(try JSONParser.parse(Array(s.stdout.utf8))["passed"]?.boolValue, false)
    }

    func testBadInputs() throws {
        let mismatch = try run(["verify", moe, Fixtures.model("nemotron-h-tiny-dense"), "--text", text, "--max-windows", "1"])
        XCTAssertEqual(mismatch.status, 65)
        XCTAssertTrue(mismatch.stderr.contains("layer patterns"), mismatch.stderr)
        XCTAssertEqual(try run(["verify", moe, dir + "/missing.nemo", "--text", text]).status, 65)
        XCTAssertEqual(try run(["verify", moe, moe, "--text", text, "--min-top1", "97"]).status, 64)
        XCTAssertEqual(try run(["footprint", "--preset", "nemotron-9000"]).status, 64)
        XCTAssertEqual(try run(["footprint"]).status, 64)
    }

    func testFootprintJSON() throws {
        let r = try run(["footprint", "--preset", "nemotron-3-nano-30b-a3b", "--recipe", "int4", "--context", "131072", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try JSONParser.parse(Array(r.stdout.utf8))
        let preset = ModelPreset.nemotron3Nano30bA3b
        XCTAssertEqual(j["weights"]?["bytes"]?.intValue,
                       try WeightSizing(tensors: preset.tensors, recipe: .builtin(.int4), config: preset.config).bytes)
        XCTAssertEqual(j["kv_cache"]?["bytes"]?.intValue, 805_306_368)
        XCTAssertEqual(j["kv_cache"]?["dtype"]?.stringValue, "bf16")
        XCTAssertEqual(j["devices"]?.arrayValue?.count, 8)
        let packed = dir + "/mixed.nemo"
        XCTAssertEqual(try run(["convert", moe, "-o", packed, "--recipe", "mixed"]).status, 0)
        let a = try JSONParser.parse(Array(try run(["footprint", packed, "--json"]).stdout.utf8))
        let b = try JSONParser.parse(Array(try run(["footprint", moe, "--recipe", "mixed", "--json"]).stdout.utf8))
        XCTAssertEqual(a["weights"]?["bytes"]?.intValue, b["weights"]?["bytes"]?.intValue)
        XCTAssertEqual(try run(["footprint", packed, "--recipe", "int4"]).status, 64)
        let text = try run(["footprint", moe])
        XCTAssertEqual(text.status, 0)
        XCTAssertTrue(text.stdout.contains("RTX 4090"), text.stdout)
    }
}
