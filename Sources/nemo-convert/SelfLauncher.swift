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

extension PeerQuantizer {
    /// llama.cpp's `llama-quantize INPUT OUTPUT TYPE THREADS`, spawned directly and reaped with
    /// wait4, whose rusage is this child's alone (getrusage(RUSAGE_CHILDREN) would fold in every
    /// earlier conversion's peak RSS).
    static func llamaQuantize(_ path: String) throws -> PeerQuantizer {
        guard access(path, X_OK) == 0 else { throw ValidationError("--llama-quantize \(path): not an executable file") }
        return PeerQuantizer(name: "llama-quantize") { input, output, type, threads in
            let log = NSTemporaryDirectory() + "nemo-convert-peer-\(getpid()).log"
            defer { unlink(log) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            let args = [path, input, output, type, String(threads)]
            var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            var pid: pid_t = 0
            var start = timespec()
            clock_gettime(CLOCK_MONOTONIC, &start)
            let rc = posix_spawn(&pid, path, &actions, nil, &argv, environ)
            guard rc == 0 else { throw ValidationError("cannot start \(path): \(String(cString: strerror(rc)))") }
            var status: Int32 = 0
            var usage = rusage()
            while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
            var end = timespec()
            clock_gettime(CLOCK_MONOTONIC, &end)
            let wall = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) * 1e-9
            func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
            let exited = (status & 0x7f) == 0
            let code: Int32 = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            let err = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return Output(status: code, stderr: err, wallSeconds: wall, cpuSeconds: s(usage.ru_utime) + s(usage.ru_stime),
                          peakRSSBytes: Int(usage.ru_maxrss) * 1024)
        }
    }
}
