#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) { fputs(string, stderr) }
}

/// True when standard error is a terminal: progress lines go there, never into `--json` output.
var stderrIsTTY: Bool { isatty(2) != 0 }
