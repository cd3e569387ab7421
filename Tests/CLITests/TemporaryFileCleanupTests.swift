import XCTest
import Foundation
import Formats
import TestSupport

/// Issue 10, item 9: interrupted or killed runs leave no temporaries behind for long.
final class TemporaryFileCleanupTests: ScratchDirectoryTestCase {
    let moe = Fixtures.model("nemotron-h-tiny-moe")
    let text = Fixtures.text("kjv-calib.txt")

    func testCtrlCDuringSaveStatsRemovesEveryTemporary() throws {
        let stats = dir + "/s.safetensors", out = dir + "/o.nemo"
        let (p, o, e) = try CLIRunner.start(["convert", moe, "-o", out, "--calib", text, "--calib-windows", "16",
                                             "--method", "rtn", "--save-stats", stats])
        // The statistics' staging file (`.s.safetensors.data-*`) used to survive Ctrl-C.
        let end = Date().addingTimeInterval(60)
        while !listing().contains(where: { $0.hasPrefix(".s.safetensors.data-") }) && Date() < end { usleep(2_000) }
        XCTAssertTrue(listing().contains { $0.hasPrefix(".s.safetensors.data-") }, "\(listing())")
        kill(p.processIdentifier, SIGINT)
        _ = o.fileHandleForReading.readDataToEndOfFile(); _ = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 130)
        XCTAssertEqual(listing(), [])
    }

    func testStaleTemporariesOfTheSameOutputAreSwept() throws {
        let out = dir + "/o.nemo"
        // What SIGKILL or a crash left: our naming pattern, for this destination, old.
        let stale = [".o.nemo.partial-Ab3xY9", ".o.nemo.tmp-000000", ".o.nemo.data-zzzzzz"]
        // Not ours, another output's, or too new to be a dead run's: kept.
        let kept = [".o.nemo.partial-toolong1", ".o.nemo.partial-abc", ".p.nemo.partial-Ab3xY9", "o.nemo.partial-Ab3xY9", ".o.nemo.backup-Ab3xY9"]
        for n in stale + kept { FileManager.default.createFile(atPath: dir + "/" + n, contents: Data("x".utf8)) }
        let old = Date().addingTimeInterval(-3600)
        for n in stale + kept { try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: dir + "/" + n) }
        let fresh = ".o.nemo.partial-NeW123"
        FileManager.default.createFile(atPath: dir + "/" + fresh, contents: Data("x".utf8))
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(3600)], ofItemAtPath: dir + "/" + fresh)

        let r = try CLIRunner.run(["convert", moe, "-o", out, "--recipe", "int8"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(listing(), (kept + [fresh, "o.nemo"]).sorted())
    }

    /// A temporary a live writer holds (flock) is never swept, even when old.
    func testLockedTemporaryIsKept() throws {
        let live = dir + "/.o.nemo.partial-LiVe12"
        FileManager.default.createFile(atPath: live, contents: Data("x".utf8))
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-3600)], ofItemAtPath: live)
        let fd = open(live, O_RDONLY)
        defer { close(fd) }
        XCTAssertEqual(flock(fd, LOCK_EX), 0)
        XCTAssertEqual(try CLIRunner.run(["convert", moe, "-o", dir + "/o.nemo", "--recipe", "int8"]).status, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: live))
    }

    func testInterruptedConvertLeavesNoOutput() throws {
        // A real process, killed with SIGINT mid-conversion: neither OUT nor its temporary remain.
        let out = dir + "/interrupted.nemo"
        let (p, _, _) = try CLIRunner.start(["convert", moe, "-o", out, "--recipe", "int8"],
                                            environment: ["NEMO_CONVERT_TEST_DELAY_MS": "50"])
        Thread.sleep(forTimeInterval: 0.6)
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 130)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }
}
