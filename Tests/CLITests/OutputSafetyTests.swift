import XCTest
import Foundation
import Formats
import TestSupport

/// Issue 10, item 1: no output may replace an input, another output, a device or a symlink.
final class OutputSafetyTests: ScratchDirectoryTestCase {
    /// A copy of the held-out text: tests name it as an output, and on a regression it would be replaced.
    var text: String {
        let t = dir + "/heldout.txt"
        if !FileManager.default.fileExists(atPath: t) { try? FileManager.default.copyItem(atPath: Fixtures.text("kjv-heldout.txt"), toPath: t) }
        return t
    }

    func testConvertRefusesToOverwriteAnyCheckpointFile() throws {
        let m = try copyModel()
        for f in ["model.safetensors", "config.json", "tokenizer.json"] {
            let before = contents(m + "/" + f)
            let r = try CLIRunner.run(["convert", m, "-o", m + "/" + f, "--recipe", "int8"])
            XCTAssertEqual(r.status, 64, f)
            XCTAssertEqual(r.stderr, "error: -o \(m)/\(f) is the same file as the checkpoint's \(m)/\(f); refusing to overwrite an input (choose another output path)\n")
            XCTAssertEqual(contents(m + "/" + f), before, "\(f) must be untouched")
        }
        XCTAssertEqual(listing("m"), ["config.json", "model.safetensors", "tokenizer.json"], "no temporary left")
    }

    func testSameFileThroughAnotherPathIsStillRefused() throws {
        let m = try copyModel()
        // A symlink and a hard link: compared by device and inode, not by spelling.
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.nemo", withDestinationPath: m + "/model.safetensors")
        try FileManager.default.linkItem(atPath: m + "/config.json", toPath: dir + "/hard.nemo")
        for out in [dir + "/link.nemo", dir + "/hard.nemo", m + "/../m/model.safetensors"] {
            let r = try CLIRunner.run(["convert", m, "-o", out, "--recipe", "int8"])
            XCTAssertEqual(r.status, 64, out)
            XCTAssertTrue(r.stderr.contains("refusing to overwrite an input"), r.stderr)
        }
        XCTAssertEqual(contents(m + "/model.safetensors"), contents(Fixtures.model("nemotron-h-tiny-moe") + "/model.safetensors"))
    }

    func testSaveStatsMayNotBeTheOutputOrAnInput() throws {
        let m = try copyModel()
        let out = dir + "/o.nemo"
        var r = try CLIRunner.run(["convert", m, "-o", out, "--calib", text, "--save-stats", out, "--calib-windows", "1"])
        XCTAssertEqual(r.status, 64)
        XCTAssertEqual(r.stderr, "error: --save-stats \(out) and -o \(out) are the same file; one would replace the other (choose different paths)\n")
        r = try CLIRunner.run(["convert", m, "-o", out, "--calib", text, "--save-stats", text, "--calib-windows", "1"])
        XCTAssertEqual(r.status, 64)
        XCTAssertEqual(r.stderr, "error: --save-stats \(text) is the same file as --calib \(text); refusing to overwrite an input (choose another output path)\n")
        r = try CLIRunner.run(["convert", m, "-o", out, "--calib", text, "--save-stats", m + "/model.safetensors", "--calib-windows", "1"])
        XCTAssertEqual(r.status, 64)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        // --stats files are inputs too.
        let stats = dir + "/s.safetensors"
        FileManager.default.createFile(atPath: stats, contents: Data("x".utf8))
        r = try CLIRunner.run(["convert", m, "-o", stats, "--stats", stats])
        XCTAssertEqual(r.status, 64)
        XCTAssertEqual(contents(stats), Data("x".utf8))
    }

    func testVerifyPlotMayNotReplaceEitherModel() throws {
        let m = try copyModel()
        let packed = dir + "/int8.nemo"
        XCTAssertEqual(try CLIRunner.run(["convert", m, "-o", packed, "--recipe", "int8"]).status, 0)
        let packedBytes = contents(packed)
        for target in [packed, m + "/model.safetensors", text] {
            let before = contents(target)
            let r = try CLIRunner.run(["verify", m, packed, "--text", text, "--max-windows", "1", "--plot", target])
            XCTAssertEqual(r.status, 64, target)
            XCTAssertTrue(r.stderr.hasPrefix("error: --plot \(target) is the same file as "), r.stderr)
            XCTAssertEqual(contents(target), before)
        }
        XCTAssertEqual(contents(packed), packedBytes)
    }

    func testDeviceOutputIsRefusedAndLeftADevice() throws {
        let m = try copyModel()
        // Never the real /dev/null: on a regression the test itself would replace it. A private
        // twin (root only) and a FIFO stand in for it.
        var nodes: [(path: String, kind: mode_t, name: String)] = []
        if mknod(dir + "/null", S_IFCHR | 0o666, dev_t(0x103)) == 0 { nodes.append((dir + "/null", S_IFCHR, "a character device")) }
        XCTAssertEqual(mkfifo(dir + "/fifo", 0o600), 0)
        nodes.append((dir + "/fifo", S_IFIFO, "a FIFO"))
        for n in nodes {
            let r = try CLIRunner.run(["convert", m, "-o", n.path, "--recipe", "int8"], timeout: 60)
            XCTAssertEqual(r.status, 64, n.path)
            XCTAssertEqual(r.stderr, "error: -o \(n.path) exists and is \(n.name), not a regular file; the output is written to a temporary file and renamed over it, which would replace it (name a regular file)\n")
            var st = stat()
            XCTAssertEqual(lstat(n.path, &st), 0)
            XCTAssertEqual(st.st_mode & S_IFMT, n.kind, "\(n.path) must keep its kind")
        }
        // A directory is refused the same way.
        let r = try CLIRunner.run(["convert", m, "-o", dir, "--recipe", "int8"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("exists and is a directory, not a regular file"), r.stderr)
    }

    func testSymlinkedOutputWritesItsTarget() throws {
        let m = try copyModel()
        let target = dir + "/real.nemo", link = dir + "/link.nemo"
        FileManager.default.createFile(atPath: target, contents: Data("old".utf8))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "real.nemo")
        let r = try CLIRunner.run(["convert", m, "-o", link, "--recipe", "int8"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link), "real.nemo", "the link stays a link")
        XCTAssertTrue(PackedFile.isPacked(path: target), "the pack went to the link's target")
        // A dangling link or a loop is refused rather than replaced.
        try FileManager.default.createSymbolicLink(atPath: dir + "/dangling.nemo", withDestinationPath: "missing/x.nemo")
        let d = try CLIRunner.run(["convert", m, "-o", dir + "/dangling.nemo", "--recipe", "int8"])
        XCTAssertEqual(d.status, 64)
        XCTAssertEqual(d.stderr, "error: -o \(dir)/dangling.nemo is a symbolic link to a missing file; name the file to write instead\n")
    }
}
