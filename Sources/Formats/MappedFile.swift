#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only. Tensors are views into it: nothing is copied until a kernel
/// converts the bytes it needs, so opening a 60 GB checkpoint costs page-table entries, not RAM.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let count: Int
    public let bytes: UnsafeRawBufferPointer

    public init(path: String) throws(FormatError) {
        self.path = path
        isMapped = true
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait forever for a writer; it is
        // then refused below like any file that is not regular. No effect on regular files.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw FormatError.io(file: path, message: "cannot open: \(errnoString())") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FormatError.io(file: path, message: "cannot stat: \(errnoString())") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FormatError.io(file: path, message: "not a regular file (\(fileKind(st.st_mode)))") }
        count = Int(st.st_size)
        if count == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let p = mmap(nil, count, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw FormatError.io(file: path, message: "cannot map: \(errnoString())")
        }
        bytes = UnsafeRawBufferPointer(start: p, count: count)
    }

    private let isMapped: Bool

    /// A "file" held in memory: lets tests and tools validate bytes they built or mutated
    /// without a round trip through the file system. `path` is only used in messages.
    public init(path: String, contents: [UInt8]) {
        self.path = path
        count = contents.count
        isMapped = false
        let n = contents.count
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, n), alignment: 64)
        contents.withUnsafeBytes { if let b = $0.baseAddress { p.copyMemory(from: b, byteCount: n) } }
        bytes = UnsafeRawBufferPointer(start: p, count: count)
    }

    deinit {
        guard let b = bytes.baseAddress else { return }
        if isMapped { munmap(UnsafeMutableRawPointer(mutating: b), count) } else { b.deallocate() }
    }

    /// Reads a whole (small) file into memory: config.json, index files, tokenizer.json.
    public static func contents(of path: String) throws(FormatError) -> [UInt8] {
        let f = try MappedFile(path: path)
        return withExtendedLifetime(f) { Array(f.bytes) }
    }

    /// Tell the kernel a range will be read soon: cold sequential reads go from ~1 to ~2.5 GB/s.
    public func willNeed(offset: Int, count n: Int) { advise(offset, n, MADV_WILLNEED) }

    /// Drop a range from this process's resident set once it has been consumed, so streaming a
    /// checkpoint larger than RAM keeps RSS flat (the pages stay in the page cache).
    public func dontNeed(offset: Int, count n: Int) { advise(offset, n, MADV_DONTNEED) }

    private func advise(_ offset: Int, _ n: Int, _ advice: Int32) {
        // Only file-backed pages may be advised: MADV_DONTNEED on heap memory zero-fills whole
        // pages, the buffer's own and whatever else malloc put on them (a GGUF's rewritten A_log
        // lives in such a buffer; dropping it once corrupted unrelated objects and crashed).
        guard isMapped, let base = bytes.baseAddress, n > 0, offset >= 0, offset < count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        let end = min(count, offset + n)
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, advice)
    }
}

func errnoString() -> String { String(cString: strerror(errno)) }

func fileKind(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFDIR: return "a directory"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFIFO: return "a FIFO"
    case S_IFSOCK: return "a socket"
    default: return "a special file"
    }
}

/// Why `path` cannot be opened, or nil when it exists: "no such file or directory", "too many
/// levels of symbolic links" (a loop), "permission denied"…
func missingReason(_ path: String) -> String? {
    var st = stat()
    return stat(path, &st) == 0 ? nil : errnoString().lowercased()
}
