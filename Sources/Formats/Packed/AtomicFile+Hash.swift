#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension AtomicFile {
    /// xxHash64 of bytes already written, read back through a temporary mapping.
    func hashRange(offset: Int, count: Int) throws(FormatError) -> UInt64 {
        if count == 0 { return XXH64.hash(UnsafeRawBufferPointer(start: nil, count: 0)) }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        let len = offset + count - start
        guard let p = mmap(nil, len, PROT_READ, MAP_SHARED, fd, off_t(start)), p != MAP_FAILED else {
            throw FormatError.output(file: destination, message: "cannot map written data: \(errnoString())")
        }
        defer { munmap(p, len) }
        return XXH64.hash(UnsafeRawBufferPointer(start: p + (offset - start), count: count))
    }
}

extension AtomicFile {
    /// Copies bytes already written back out of the temporary file (through the page cache).
    func read(offset: Int, count: Int, into out: UnsafeMutableRawPointer) throws(FormatError) {
        var done = 0
        while done < count {
            let n = pread(fd, out + done, count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw FormatError.output(file: destination, message: "cannot read back written data: \(errnoString())") }
            done += n
        }
    }
}
