import XCTest
import Foundation
import Formats
import TestSupport

/// Issue 11 §3, through the binary: a ModelOpt FP8 checkpoint is evaluated and converted with its
/// scales. Before, it was evaluated with the scales ignored (perplexity 3677, exit 0), and since
/// issue 10 refused with exit 65 as "tensors the config does not use"; both fail this test.
final class QuantizedInputTests: ScratchDirectoryTestCase {
    let dense = Fixtures.tinyDense
    let text = Fixtures.text("kjv-heldout.txt")

    func testModelOptFP8CheckpointEvaluatesAndConvertsWithItsScales() throws {
        let fp8 = try ModelOptFixture.write(dir: dir, "fp8", from: dense, .fp8Channel,
                                            quantConfig: ["quant_method": "modelopt", "quant_algo": "FP8"])
        let ref = try XCTUnwrap(try JSONParser.parse(try MappedFile.contents(of: dense + "/reference.json"))["ppl_kjv_heldout"]?["fp8-channel"]?.doubleValue)
        let p = try CLIRunner.run(["perplexity", fp8, "--text", text, "--json"])
        XCTAssertEqual(p.status, 0, p.stderr)
        let ppl = try XCTUnwrap(try JSONParser.parse(Array(p.stdout.utf8))["ppl"]?.doubleValue, p.stdout)
        XCTAssertLessThanOrEqual(abs(ppl / ref - 1), 0.003, "ppl \(ppl), reference fp8-channel \(ref)")

        // The plan says where each weight comes from; converting to the source's own scheme copies it.
        let plan = try CLIRunner.run(["convert", fp8, "--recipe", Fixtures.root + "/../recipes/naive-fp8-channel.json", "--dry-run"])
        XCTAssertEqual(plan.status, 0, plan.stderr)
        XCTAssertTrue(plan.stdout.contains("source: ModelOpt FP8 checkpoint"), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("backbone.layers.0.mixer.out_proj.weight  [256, 256]  fp8-channel  (from F8_E4M3 × weight_scale per row (ModelOpt FP8))"), plan.stdout)
        let out = dir + "/o.nemo"
        let c = try CLIRunner.run(["convert", fp8, "-o", out, "--recipe", Fixtures.root + "/../recipes/naive-fp8-channel.json"])
        XCTAssertEqual(c.status, 0, c.stderr)
        let q = try CLIRunner.run(["perplexity", out, "--text", text, "--json"])
        XCTAssertEqual(try JSONParser.parse(Array(q.stdout.utf8))["ppl"]?.doubleValue, ppl, "the copy reads back to the checkpoint's values")

        // A scale that cannot be read is an input error naming the tensor, never ignored.
        let bad = try ModelOptFixture.write(dir: dir, "bad", from: dense, .fp8Channel,
                                            quantConfig: ["quant_method": "modelopt", "quant_algo": "FP8"]) {
            $0.removeAll { $0.0.name == "backbone.layers.0.mixer.in_proj.weight_scale" }
        }
        let b = try CLIRunner.run(["perplexity", bad, "--text", text])
        XCTAssertEqual(b.status, 65, b.stderr)
        XCTAssertTrue(b.stderr.contains("tensor 'backbone.layers.0.mixer.in_proj.weight': F8_E4M3 weight without its backbone.layers.0.mixer.in_proj.weight_scale"), b.stderr)
    }
}
