import Foundation
import XCTest

/// Runs the nemo-convert binary of the same build, as scripts see it: exit status, stdout, stderr.
///
/// A missing binary is a failure, not a skip: a CI run that forgot to build it would otherwise
/// pass without testing the command line at all.
public enum CLIRunner {
    /// Why a CLI test could not run.
    public struct BinaryMissing: Error, CustomStringConvertible {
        public let searched: [String]
        public var description: String {
            "the nemo-convert binary was not found (looked at \(searched.joined(separator: ", "))); "
                + "run `swift build -c release --product nemo-convert` before the tests (scripts/test.sh does)"
        }
    }

    /// The binary: test bundles and executables share one products directory.
    public static func executable() throws -> String {
        var candidates: [String] = []
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var d = me.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(d.path + "/nemo-convert")
            d.deleteLastPathComponent()
        }
        candidates.append(Fixtures.root + "/../.build/release/nemo-convert")
        guard let exe = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw BinaryMissing(searched: candidates)
        }
        return exe
    }

    public static func start(_ args: [String], environment: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
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

    /// `timeout`: a command that hangs (a regression) is killed and reported, not waited on forever.
    public static func run(_ args: [String], environment: [String: String] = [:],
                           timeout: Double = 300) throws -> (status: Int32, stdout: String, stderr: String) {
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
