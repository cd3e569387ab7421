import XCTest
import Foundation
import Formats
import TestSupport

/// README's exit-code table, driven through the real binary, and the messages issue 10 items 11,
/// 12 and 14 asked for.
final class ExitCodeTests: ScratchDirectoryTestCase {
    let moe = Fixtures.model("nemotron-h-tiny-moe")
    let text = Fixtures.text("kjv-heldout.txt")

    /// Every code the README documents (1 is "anything else": a bug, not provokable on purpose).
    func testREADMEExitCodeTable() throws {
        let readme = try String(contentsOfFile: Fixtures.root + "/../README.md", encoding: .utf8)
        for code in ["`0`", "`64`", "`65`", "`73`", "`130`", "`3`", "`1`"] {
            XCTAssertTrue(readme.contains("| \(code) |"), "README's exit-code table lists \(code)")
        }
        let out = dir + "/o.nemo"
        // 0 success.
        XCTAssertEqual(try CLIRunner.run(["convert", moe, "-o", out, "--recipe", "int8"]).status, 0)
        // 64 usage error, from parsing and after it.
        XCTAssertEqual(try CLIRunner.run(["convert", moe]).status, 64)
        let m = try copyModel()
        XCTAssertEqual(try CLIRunner.run(["convert", m, "-o", m + "/config.json"]).status, 64)
        // 65 bad input.
        XCTAssertEqual(try CLIRunner.run(["inspect", dir + "/missing"]).status, 65)
        // 73 output could not be written (no directory to create the temporary file in), nothing left.
        let w = try CLIRunner.run(["convert", moe, "-o", dir + "/no/such/dir/o.nemo", "--recipe", "int8"])
        XCTAssertEqual(w.status, 73, w.stderr)
        XCTAssertEqual(w.stderr, "error: \(dir)/no/such/dir/o.nemo: cannot create a temporary file in \(dir)/no/such/dir: No such file or directory\n")
        // 3 a verify threshold failed.
        let v = try CLIRunner.run(["verify", moe, out, "--text", text, "--max-windows", "1", "--max-kld", "0"])
        XCTAssertEqual(v.status, 3, v.stderr)
        // 130 interrupted: Ctrl-C mid-conversion, no output or temporary left.
        let out2 = dir + "/slow.nemo"
        let (p, o, e) = try CLIRunner.start(["convert", moe, "-o", out2, "--recipe", "int8"], environment: ["NEMO_CONVERT_TEST_DELAY_MS": "50"])
        try waitFor { self.listing().contains { $0.hasPrefix(".slow.nemo.partial-") } }
        kill(p.processIdentifier, SIGINT)
        _ = o.fileHandleForReading.readDataToEndOfFile(); _ = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 130)
        XCTAssertEqual(listing(), ["m", "o.nemo"])
    }

    /// A read-only file system (EROFS) or a full disk is an output failure (73), not bad input (65).
    func testWriteFailureExits73() throws {
        guard FileManager.default.fileExists(atPath: "/proc/self") else { throw XCTSkip("no /proc") }
        let r = try CLIRunner.run(["convert", moe, "-o", "/proc/self/o.nemo", "--recipe", "int8"])
        XCTAssertEqual(r.status, 73, r.stderr)
    }

    func testBadRecipeTokenizerAndShortTextAreBadInput() throws {
        let recipe = dir + "/r.json"
        FileManager.default.createFile(atPath: recipe, contents: Data("{bad".utf8))
        var r = try CLIRunner.run(["convert", moe, "-o", dir + "/o.nemo", "--recipe", recipe])
        XCTAssertEqual(r.status, 65)
        XCTAssertEqual(r.stderr, "error: \(recipe): not valid JSON: expected a string key at byte 1\n")

        let tok = dir + "/tokenizer.json"
        FileManager.default.createFile(atPath: tok, contents: Data("{\"model\": 3}".utf8))
        r = try CLIRunner.run(["perplexity", moe, "--text", text, "--tokenizer", tok, "--max-windows", "1"])
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(tok)"), r.stderr)

        let short = dir + "/short.txt"
        FileManager.default.createFile(atPath: short, contents: Data("In the beginning".utf8))
        for cmd in [["perplexity", moe], ["verify", moe, moe], ["convert", moe, "-o", dir + "/o.nemo", "--calib"]] {
            r = try CLIRunner.run(cmd + (cmd[0] == "convert" ? [short] : ["--text", short]))
            XCTAssertEqual(r.status, 65, cmd[0])
            XCTAssertEqual(r.stderr, "error: \(short): has 3 tokens, fewer than one window of --ctx 256 (use a longer text or a smaller --ctx)\n", cmd[0])
            XCTAssertFalse(r.stderr.contains("Usage:"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/o.nemo"))

        // A model without a tokenizer.json is missing an input, not misusing the command line:
        // 65 naming the model, no usage banner.
        let bare = dir + "/bare"
        try FileManager.default.createDirectory(atPath: bare, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.createSymbolicLink(atPath: bare + "/" + f, withDestinationPath: moe + "/" + f)
        }
        r = try CLIRunner.run(["perplexity", bare, "--text", text, "--max-windows", "1"])
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertEqual(r.stderr, "error: \(bare): no tokenizer.json next to the model; pass --tokenizer FILE\n")
    }

    func testUsageErrorsFoundAfterParsing() throws {
        var r = try CLIRunner.run(["convert", moe, "-o", dir + "/o.nemo", "--recipe", "int8", "--group-size", "64"])
        XCTAssertEqual(r.status, 64)
        XCTAssertEqual(r.stderr, "error: --group-size 64 has no effect: recipe 'int8' has no grouped INT4 scheme to apply it to\n")
        r = try CLIRunner.run(["convert", moe, "-o", dir + "/o.nemo", "--recipe", "fp8", "--group-size", "64"])
        XCTAssertEqual(r.status, 64)
        // Recipes with a grouped scheme take it.
        XCTAssertEqual(try CLIRunner.run(["convert", moe, "-o", dir + "/o.nemo", "--recipe", "mixed", "--group-size", "64"]).status, 0)
        for d in ["inf", "nan", "0"] {
            r = try CLIRunner.run(["convert", moe, "-o", dir + "/x.nemo", "--calib", text, "--damp", d])
            XCTAssertEqual(r.status, 64, d)
            XCTAssertTrue(r.stderr.contains("--damp must be a positive finite number"), r.stderr)
        }
    }

    func testMessagesNameTheProblem() throws {
        // A symlink loop is a loop, not a missing file.
        try FileManager.default.createSymbolicLink(atPath: dir + "/a", withDestinationPath: dir + "/b")
        try FileManager.default.createSymbolicLink(atPath: dir + "/b", withDestinationPath: dir + "/a")
        var r = try CLIRunner.run(["inspect", dir + "/a"])
        XCTAssertEqual(r.status, 65)
        XCTAssertEqual(r.stderr, "error: \(dir)/a: too many levels of symbolic links\n")
        // A packed model given as statistics.
        let packed = dir + "/p.nemo"
        XCTAssertEqual(try CLIRunner.run(["convert", moe, "-o", packed, "--recipe", "int8"]).status, 0)
        r = try CLIRunner.run(["convert", moe, "-o", dir + "/o.nemo", "--stats", packed])
        XCTAssertEqual(r.status, 65)
        XCTAssertEqual(r.stderr, "error: \(packed): this is a packed model written by convert, not a statistics file (convert --save-stats FILE writes those)\n")
    }

    /// A FIFO as --text or config.json used to block forever in open().
    func testFIFOInputsAreRefusedNotWaitedOn() throws {
        let fifo = dir + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let start = Date()
        var r = try CLIRunner.run(["perplexity", moe, "--text", fifo], timeout: 20)
        XCTAssertEqual(r.status, 65)
        XCTAssertEqual(r.stderr, "error: \(fifo): not a regular file (a FIFO)\n")
        let m = dir + "/m"
        try FileManager.default.createDirectory(atPath: m, withIntermediateDirectories: true)
        XCTAssertEqual(mkfifo(m + "/config.json", 0o600), 0)
        try FileManager.default.createSymbolicLink(atPath: m + "/model.safetensors", withDestinationPath: moe + "/model.safetensors")
        r = try CLIRunner.run(["inspect", m], timeout: 20)
        XCTAssertEqual(r.status, 65)
        XCTAssertEqual(r.stderr, "error: \(m)/config.json: not a regular file (a FIFO)\n")
        XCTAssertLessThan(Date().timeIntervalSince(start), 40)
    }

    func waitFor(_ condition: () -> Bool, timeout: Double = 60) throws {
        let end = Date().addingTimeInterval(timeout)
        while !condition() {
            guard Date() < end else { XCTFail("timed out"); return }
            usleep(5_000)
        }
    }
}
