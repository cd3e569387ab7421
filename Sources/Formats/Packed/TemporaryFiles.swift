#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Temporary outputs to delete if the process is interrupted (Ctrl-C, SIGTERM) before they are
/// renamed into place. Paths are kept as C strings in fixed storage so the signal handler only
/// calls `unlink` and `_exit`, which are async-signal-safe.
public enum TemporaryFiles {
    private static let slots = 64
    private static let slotBytes = 4096
    nonisolated(unsafe) private static let storage: UnsafeMutablePointer<CChar> = {
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: slots * slotBytes)
        p.initialize(repeating: 0, count: slots * slotBytes)
        return p
    }()
    nonisolated(unsafe) private static var installed = false
    /// Every writer registers its temporary file, from whichever thread creates it; the signal
    /// handler only reads, so only registration needs the lock.
    nonisolated(unsafe) private static let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()

    static func register(_ path: String) {
        let bytes = Array(path.utf8CString)
        guard bytes.count <= slotBytes else { return }
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        for s in 0..<slots where storage[s * slotBytes] == 0 {
            // Name first, first byte last: the handler never sees a half-written path.
            bytes.withUnsafeBufferPointer { (storage + s * slotBytes + 1).update(from: $0.baseAddress! + 1, count: bytes.count - 1) }
            storage[s * slotBytes] = bytes[0]
            return
        }
    }

    static func unregister(_ path: String) {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        for s in 0..<slots where storage[s * slotBytes] != 0 {
            if String(cString: storage + s * slotBytes) == path { storage[s * slotBytes] = 0 }
        }
    }

    /// Installs SIGINT/SIGTERM/SIGHUP/SIGPIPE handlers that remove registered temporary files and
    /// exit with 128 + signal, as a shell would report; and handlers for the signals a crash
    /// raises (a Swift trap is SIGILL or SIGTRAP) that remove them and then die of the same signal,
    /// so a crash still looks like one. SIGKILL cannot be caught: the next run writing the same
    /// output sweeps what it left (`AtomicFile.sweepStale`).
    public static func installSignalHandlers() {
        guard !installed else { return }
        installed = true
        for sig in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] {
            signal(sig) { s in
                TemporaryFiles.unlinkAll()
                _exit(128 + s)
            }
        }
        for sig in [SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGSEGV, SIGFPE] {
            signal(sig) { s in
                TemporaryFiles.unlinkAll()
                signal(s, SIG_DFL)
                raise(s)
            }
        }
    }

    private static func unlinkAll() {
        for i in 0..<slots where storage[i * slotBytes] != 0 {
            unlink(storage + i * slotBytes)
        }
        // Then the temporary directories (a Hugging Face export's), now emptied of the files
        // registered inside them; rmdir of a path that was a file fails harmlessly.
        for i in 0..<slots where storage[i * slotBytes] != 0 {
            rmdir(storage + i * slotBytes)
        }
    }
}
