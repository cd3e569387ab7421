import XCTest
import Foundation

/// Runs the nemo-convert binary of the same build, as scripts see it: exit status, stdout, stderr.
enum CLIRunner {
    static func executable() throws -> String {
        var candidates: [String] = []
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var d = me.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(d.path + "/nemo-convert")
            d.deleteLastPathComponent()
        }
        candidates.append(Fixtures.root + "/../.build/release/nemo-convert")
        guard let exe = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("nemo-convert binary not found near \(me.path)")
        }
        return exe
    }

    static func start(_ args: [String], environment: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try executable())
        p.arguments = args
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        return (p, out, err)
    }

    /// `timeout`: a command that hangs (a regression) is terminated and reported, not waited on forever.
    static func run(_ args: [String], environment: [String: String] = [:], timeout: Double = 300) throws -> (status: Int32, stdout: String, stderr: String) {
        let (p, out, err) = try start(args, environment: environment)
        let pid = p.processIdentifier
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        defer { watchdog.cancel() }
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}

/// A scratch directory per test, removed afterwards, with a copy of a fixture model to overwrite.
class ScratchDirectoryTestCase: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "nemo-cli-\(getpid())-\(UInt32.random(in: 0..<UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// A copy of the tiny MoE model in the scratch directory (inputs tests may try to destroy).
    func copyModel(_ name: String = "nemotron-h-tiny-moe", to sub: String = "m") throws -> String {
        let dst = dir + "/" + sub
        try FileManager.default.createDirectory(atPath: dst, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors", "tokenizer.json"] {
            try FileManager.default.copyItem(atPath: Fixtures.model(name) + "/" + f, toPath: dst + "/" + f)
        }
        return dst
    }

    func contents(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    /// Names in the scratch directory (and one level below), hidden ones included.
    func listing(_ sub: String = "") -> [String] {
        let d = sub.isEmpty ? dir : dir + "/" + sub
        return ((try? FileManager.default.contentsOfDirectory(atPath: d)) ?? []).sorted()
    }
}
