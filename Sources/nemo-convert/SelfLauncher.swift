import ArgumentParser
import Benchmarks
import Foundation

extension ConvertLauncher {
    /// Runs this very binary as the child (`bench convert`, `bench calibrate`): the benchmarks
    /// measure the converter users run, in a process of its own.
    static func ownExecutable() throws -> ConvertLauncher {
        let exe = try ownExecutablePath()
        return ConvertLauncher(name: exe) { args in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = args
            let stdout = Pipe(), stderr = Pipe()
            p.standardOutput = stdout
            p.standardError = stderr
            try p.run()
            // Both pipes drained before waiting: a child that fills one would otherwise block.
            let data = stdout.fileHandleForReading.readDataToEndOfFile()
            let err = stderr.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return Output(status: p.terminationStatus, stdout: [UInt8](data), stderr: String(decoding: err, as: UTF8.self))
        }
    }
}

/// This binary's path, so a benchmark can run conversions as child processes of itself.
private func ownExecutablePath() throws -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    if n > 0 { return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    let arg0 = CommandLine.arguments[0]
    guard arg0.contains("/") else { throw ValidationError("cannot locate the nemo-convert executable; run it by path") }
    return arg0
}
