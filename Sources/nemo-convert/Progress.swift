#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A single self-overwriting progress line on stderr, shown only on a terminal and never in
/// `--json` mode, throttled so printing costs nothing measurable.
final class ProgressLine {
    private let enabled: Bool
    private var last = 0.0
    private var shown = false

    init(quiet: Bool) { enabled = !quiet && isatty(2) != 0 }

    func update(_ text: @autoclosure () -> String) {
        guard enabled else { return }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let now = Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
        guard now - last > 0.1 else { return }
        last = now
        fputs("\r\u{1B}[K" + text(), stderr)
        shown = true
    }

    func finish() {
        if shown { fputs("\r\u{1B}[K", stderr); shown = false }
    }
}
