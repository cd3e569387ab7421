import XCTest
import Foundation
import Formats
import TestSupport

/// `convert --format gguf` and GGUF files as MODEL arguments, through the real binary.
final class GGUFCommandTests: ScratchDirectoryTestCase {
    let moe = Fixtures.tinyMoE
    let dense = Fixtures.tinyDense
    let text = Fixtures.text("kjv-heldout.txt")

    func ppl(_ model: String) throws -> Double {
        let r = try CLIRunner.run(["perplexity", model, "--text", text, "--max-windows", "8", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(JSONParser.parse(r.stdout)["ppl"]?.doubleValue)
    }

    /// (c) The F32 GGUF is the checkpoint: the same forward pass gives the same perplexity, to the
    /// last bit (A_log read back as an exact preimage of ssm_a, the tokenizer from the metadata).
    func testPerplexityOfF32GGUFEqualsTheCheckpoints() throws {
        for m in [moe, dense] {
            let out = dir + "/m.gguf"
            let c = try CLIRunner.run(["convert", m, "-o", out, "--format", "gguf", "--recipe", "f32"])
            XCTAssertEqual(c.status, 0, c.stderr)
            XCTAssertEqual(try ppl(out), try ppl(m), m)
        }
    }

    func testConvertInspectVerifyAndReconvert() throws {
        let out = dir + "/q.gguf"
        let c = try CLIRunner.run(["convert", moe, "-o", out, "--format", "gguf", "--recipe", "q4_0", "--json"])
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertEqual(try JSONParser.parse(c.stdout)["output"]?.stringValue, out)
        XCTAssertEqual(Array(try XCTUnwrap(contents(out)).prefix(4)), Array("GGUF".utf8))
        let i = try CLIRunner.run(["inspect", out])
        XCTAssertEqual(i.status, 0, i.stderr)
        XCTAssertTrue(i.stdout.hasPrefix("model        \(out) (GGUF v3, nemotron_h_moe, 1 file)\n"), i.stdout)
        XCTAssertTrue(i.stdout.contains("blk.1.ffn_up_exps.weight      Q4_0   [16, 128, 256]  expert_up"), i.stdout)
        let v = try CLIRunner.run(["verify", moe, out, "--text", text, "--max-windows", "2", "--json"])
        XCTAssertEqual(v.status, 0, v.stderr)
        // A GGUF file converts like a checkpoint: to a packed file, or to another GGUF.
        let p = try CLIRunner.run(["convert", out, "-o", dir + "/q.nemo", "--recipe", "int8"])
        XCTAssertEqual(p.status, 0, p.stderr)
        let g = try CLIRunner.run(["convert", out, "-o", dir + "/q8.gguf", "--format", "gguf", "--recipe", "q8_0"])
        XCTAssertEqual(g.status, 0, g.stderr)
        XCTAssertEqual(try CLIRunner.run(["inspect", dir + "/q8.gguf", "--verify"]).status, 0)
    }

    func testPlansGGUFCannotStoreAreUsageErrors() throws {
        let d = try CLIRunner.run(["convert", moe, "--format", "gguf", "--recipe", "int4", "--dry-run"])
        XCTAssertEqual(d.status, 64, d.stderr)
        XCTAssertTrue(d.stdout.contains("tensor(s) a GGUF file cannot store:"), d.stdout)
        XCTAssertTrue(d.stdout.contains("  backbone.layers.0.mixer.in_proj.weight: mixes schemes across its rows"), d.stdout)
        let out = dir + "/x.gguf"
        let r = try CLIRunner.run(["convert", moe, "-o", out, "--format", "gguf", "--recipe", "int8"])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("error: the plan does not fit a GGUF file ("), r.stderr)
        XCTAssertEqual(listing(), [], "nothing written")
        let s = try CLIRunner.run(["convert", moe, "-o", dir + "/x.bin", "--format", "gguf", "--recipe", "q8_0"])
        XCTAssertEqual(s.status, 64)
        XCTAssertTrue(s.stderr.contains("with --format gguf, -o must name a .gguf file (got \(dir)/x.bin)"), s.stderr)
    }

    /// (d) through the CLI: a damaged GGUF is bad input (65), the message names file and tensor.
    func testCorruptGGUFIsBadInput() throws {
        let out = dir + "/m.gguf"
        XCTAssertEqual(try CLIRunner.run(["convert", dense, "-o", out, "--format", "gguf", "--recipe", "bf16"]).status, 0)
        let bytes = try XCTUnwrap(contents(out))
        let cut = dir + "/cut.gguf"
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: cut))
        for cmd in [["inspect", cut], ["perplexity", cut, "--text", text], ["verify", dense, cut, "--text", text]] {
            let r = try CLIRunner.run(cmd)
            XCTAssertEqual(r.status, 65, "\(cmd): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("error: \(cut): tensor 'output.weight': 2097152 bytes at data offset "), "\(cmd): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasSuffix("run past the end of the data area (12413404 bytes): the file is truncated or the offset is wrong\n"), r.stderr)
        }
    }
}
