#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file that only appears at its destination once it is complete.
///
/// Bytes go to a hidden temporary file in the destination directory (same file system, so the
/// final rename is atomic); `commit()` fsyncs it, renames it over the destination and fsyncs the
/// directory. Anything else — an error, `discard()`, or dropping the object — unlinks the temporary
/// file, so a crash mid-conversion never leaves a plausible-looking half-written checkpoint behind.
final class AtomicFile {
    let destination: String
    /// What the final rename replaces: `destination`, or the file a symbolic link there points to.
    let target: String
    private(set) var tempPath: String
    private(set) var fd: Int32
    private var isOpen = true

    /// Temporary files are named `.NAME.TAG-XXXXXX` next to the destination; these are the tags.
    static let tags = ["tmp", "partial", "data"]

    init(destination: String, tag: String = "tmp") throws(FormatError) {
        self.destination = destination
        do { target = try OutputPath.destination(destination) } catch {
            throw FormatError.output(file: destination, message: error.description)
        }
        let dir = parentDirectory(target)
        let base = target.split(separator: "/").last.map(String.init) ?? target
        Self.sweepStale(directory: dir, base: base)
        var template = Array("\(join(dir, ".\(base).\(tag)-XXXXXX"))".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw FormatError.output(file: destination, message: "cannot create a temporary file in \(dir): \(errnoString())")
        }
        self.fd = fd
        self.tempPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        // Held until the file is renamed or removed: tells a later run's sweep this one is alive.
        _ = flock(fd, LOCK_EX | LOCK_NB)
        TemporaryFiles.register(tempPath)
        // mkstemp creates 0600; a converted model should be as readable as the one it came from.
        _ = fchmod(fd, 0o644)
    }

    deinit { discard() }

    /// Writes all of `bytes` at `offset`, retrying short writes and interrupted calls.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(FormatError) {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count, off = offset
        while left > 0 {
            let n = pwrite(fd, p, left, off_t(off))
            if n < 0 {
                if errno == EINTR { continue }
                throw FormatError.output(file: destination, message: "write failed: \(errnoString())")
            }
            p += n; left -= n; off += n
        }
    }

    func setSize(_ size: Int) throws(FormatError) {
        guard ftruncate(fd, off_t(size)) == 0 else {
            throw FormatError.output(file: destination, message: "cannot set file size: \(errnoString())")
        }
    }

    /// Copies `count` bytes from another open file into this one. (copy_file_range would keep the
    /// bytes in the kernel, but Swift's Glibc module does not export it.)
    func copy(from src: Int32, offset: Int, count: Int, to dstOffset: Int) throws(FormatError) {
        var inOff = off_t(offset), outOff = off_t(dstOffset), left = count
        let chunk = 1 << 22
        let buf = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buf.deallocate() }
        while left > 0 {
            let n = pread(src, buf, min(chunk, left), inOff)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw FormatError.output(file: destination, message: "copying staged data failed: \(n < 0 ? errnoString() : "unexpected end of file")")
            }
            try write(UnsafeRawBufferPointer(start: buf, count: n), at: Int(outOff))
            inOff += off_t(n); outOff += off_t(n); left -= n
        }
    }

    /// Makes the file durable and visible under its destination name.
    func commit() throws(FormatError) {
        guard isOpen else { throw FormatError.output(file: destination, message: "the output was already finished or discarded") }
        guard fsync(fd) == 0 else {
            let m = errnoString(); discard()
            throw FormatError.output(file: destination, message: "fsync failed: \(m)")
        }
        isOpen = false
        guard rename(tempPath, target) == 0 else {
            let m = errnoString(); unlink(tempPath); close(fd)
            TemporaryFiles.unregister(tempPath)
            throw FormatError.output(file: destination, message: "cannot rename the finished file into place: \(m)")
        }
        close(fd)
        TemporaryFiles.unregister(tempPath)
        // The rename itself is only durable once the directory entry is.
        let dfd = open(parentDirectory(target), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    func discard() {
        guard isOpen else { return }
        isOpen = false
        unlink(tempPath)
        close(fd)
        TemporaryFiles.unregister(tempPath)
    }

    /// Removes temporary files that an earlier run writing the same destination left behind when
    /// it was killed (SIGKILL, power loss). Only names of our own pattern for this destination,
    /// last modified before this process started writing, and not locked by a live writer.
    static func sweepStale(directory: String, base: String) {
        guard let d = opendir(directory) else { return }
        defer { closedir(d) }
        let prefix = ".\(base)."
        while let e = readdir(d) {
            // The name is read in place up to its NUL: glibc's records are only as long as the name
            // needs (d_reclen), so copying the whole 256-byte d_name field reads past the record
            // (AddressSanitizer reported it).
            let name = String(cString: (UnsafeRawPointer(e) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!)
                .assumingMemoryBound(to: CChar.self))
            guard name.hasPrefix(prefix) else { continue }
            let rest = name.dropFirst(prefix.count)
            guard let dash = rest.lastIndex(of: "-"), tags.contains(String(rest[..<dash])) else { continue }
            let suffix = rest[rest.index(after: dash)...]
            guard suffix.utf8.count == 6, suffix.utf8.allSatisfy({ isalnum(Int32($0)) != 0 }) else { continue }
            let path = join(directory, name)
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_mtim.tv_sec < runStart else { continue }
            let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { continue }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { unlink(path) }
            close(fd)
        }
    }
}

/// When this process started writing (its first output), in seconds since the epoch: temporaries
/// older than that cannot be this run's.
private let runStart: Int = time(nil)

/// Writes a small file (config.json, an index, a report) so that readers see either the old
/// contents or the new, never a torn write.
public func writeFileAtomically(_ path: String, contents: [UInt8]) throws(FormatError) {
    let f = try AtomicFile(destination: path)
    try withBytes(contents) { (b) throws(FormatError) in try f.write(b, at: 0) }
    try f.commit()
}
