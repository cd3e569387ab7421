import XCTest
import Foundation
import Formats
import TestSupport

/// Issue 13 §1: `convert --format compressed-tensors` from the command line — what it writes, what
/// it refuses (exit 64 before writing), and that an interrupted export leaves nothing.
final class HFExportCLITests: ScratchDirectoryTestCase {
    let moe = Fixtures.model("nemotron-h-tiny-moe")

    func testExportWritesAHuggingFaceDirectoryThatReadsBack() throws {
        let out = dir + "/ct"
        let r = try CLIRunner.run(["convert", moe, "-o", out, "--format", "compressed-tensors", "--recipe", "int4"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(directoryListing(out), ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
        XCTAssertEqual(directoryListing(dir), ["ct"], "no temporary directory left")
        let i = try CLIRunner.run(["inspect", out])
        XCTAssertEqual(i.status, 0, i.stderr)
        XCTAssertTrue(i.stdout.contains("compressed-tensors pack-quantized"), i.stdout)
    }

    /// A non-empty output directory could hold an input (or anything else): refused, untouched.
    func testNonEmptyOutputIsAUsageError() throws {
        let r = try CLIRunner.run(["convert", moe, "-o", moe, "--format", "compressed-tensors", "--recipe", "int8"])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("is not empty"), r.stderr)
    }

    /// A recipe that keeps Mamba dt rows in BF16 inside a quantized in_proj cannot be stored one
    /// scheme per tensor: `--dry-run` lists the tensors and exits 64.
    func testDryRunListsWhatTheFormatCannotStore() throws {
        let recipe = dir + "/mixed.json"
        try Data(#"{"name": "mixed-rows", "default": "int4-g128-sym"}"#.utf8).write(to: URL(fileURLWithPath: recipe))
        let r = try CLIRunner.run(["convert", moe, "--dry-run", "--format", "compressed-tensors", "--recipe", recipe])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stdout.contains("6 tensor(s) a compressed-tensors export cannot store:"), r.stdout)
        XCTAssertTrue(r.stdout.contains("backbone.layers.0.mixer.in_proj.weight: mixes schemes across its rows (z: int4-g128-sym, x: int4-g128-sym, B: int4-g128-sym, C: int4-g128-sym, dt: bf16)"), r.stdout)
        // The same recipe with in_proj whole fits.
        try Data(#"{"name": "whole", "default": "int4-g128-sym", "whole_in_proj": true}"#.utf8).write(to: URL(fileURLWithPath: recipe))
        XCTAssertEqual(try CLIRunner.run(["convert", moe, "--dry-run", "--format", "compressed-tensors", "--recipe", recipe]).status, 0)
    }

    func testInterruptedExportLeavesNothing() throws {
        let out = dir + "/ct"
        let (p, o, e) = try CLIRunner.start(["convert", moe, "-o", out, "--format", "compressed-tensors", "--recipe", "int8"],
                                            environment: ["NEMO_CONVERT_TEST_DELAY_MS": "50"])
        let end = Date().addingTimeInterval(60)
        while !directoryListing(dir).contains(where: { $0.hasPrefix(".ct.partial-") }) && Date() < end { usleep(2_000) }
        usleep(300_000)
        kill(p.processIdentifier, SIGINT)
        _ = o.fileHandleForReading.readDataToEndOfFile(); _ = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 130)
        XCTAssertEqual(directoryListing(dir), [])
    }

    /// Sequential calibration reads each layer back from the sink: an export keeps a copy of what
    /// the codecs wrote, so the calibrated export holds exactly the packed file's values (equal
    /// perplexity to the last digit).
    func testCalibratedExportEqualsThePackedFile() throws {
        let dense = Fixtures.model("nemotron-h-tiny-dense"), calib = Fixtures.text("kjv-calib.txt"), held = Fixtures.text("kjv-heldout.txt")
        let recipe = dir + "/whole.json"
        try Data(#"{"name": "int4", "default": "int4-g128-sym", "whole_in_proj": true}"#.utf8).write(to: URL(fileURLWithPath: recipe))
        let cal = ["--calib", calib, "--calib-windows", "2", "--method", "gptq"]
        var r = try CLIRunner.run(["convert", dense, "-o", dir + "/p.nemo", "--recipe", recipe] + cal)
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try CLIRunner.run(["convert", dense, "-o", dir + "/ct", "--format", "compressed-tensors", "--recipe", recipe] + cal)
        XCTAssertEqual(r.status, 0, r.stderr)
        func ppl(_ m: String) throws -> String {
            let p = try CLIRunner.run(["perplexity", m, "--text", held, "--max-windows", "4", "--json"])
            XCTAssertEqual(p.status, 0, p.stderr)
            let j = try JSONParser.parse(Array(p.stdout.utf8))
            return "\(j["ppl"]?.doubleValue ?? -1)"
        }
        XCTAssertEqual(try ppl(dir + "/ct"), try ppl(dir + "/p.nemo"))
    }
}
