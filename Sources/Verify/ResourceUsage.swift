#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum ResourceUsage {
    /// Peak resident set size of this process so far, in bytes.
    #if os(Linux)
    private static let RUSAGE_SELF_WHO = __rusage_who_t(RUSAGE_SELF.rawValue)
    #else
    private static let RUSAGE_SELF_WHO = RUSAGE_SELF
    #endif

    public static func peakRSSBytes() -> Int {
        var u = rusage()
        getrusage(RUSAGE_SELF_WHO, &u)
        #if os(Linux)
        return Int(u.ru_maxrss) * 1024   // kilobytes on Linux
        #else
        return Int(u.ru_maxrss)          // bytes on macOS
        #endif
    }

    /// Monotonic seconds, for timing.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
