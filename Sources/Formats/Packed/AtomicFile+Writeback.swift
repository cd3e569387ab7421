#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension AtomicFile {
    /// Starts writing a range to disk without waiting for it (Linux `sync_file_range` with
    /// SYNC_FILE_RANGE_WRITE). Left alone, the kernel writes nothing back until gigabytes are dirty
    /// or 30 s have passed, so a conversion's whole output waited for the final fsync: 1.75 GB
    /// at this VM's 0.4–1.8 GB/s came after the work instead of during it. A no-op where the call
    /// does not exist; durability still comes from `commit()`'s fsync.
    func startWriteback(offset: Int, count: Int) {
        guard count > 0, let f = syncFileRange else { return }
        _ = f(fd, Int64(offset), Int64(count), 2)   // SYNC_FILE_RANGE_WRITE
    }
}

/// Swift's Glibc module does not export sync_file_range (a _GNU_SOURCE declaration); look it up.
private let syncFileRange: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32)? = {
    #if os(Linux)
    guard let p = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range") else { return nil }
    return unsafeBitCast(p, to: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
    #else
    return nil
    #endif
}()
