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
    private(set) var tempPath: String
    private(set) var fd: Int32
    private var isOpen = true

    init(destination: String, tag: String = "tmp") throws(FormatError) {
        self.destination = destination
        let dir = parentDirectory(destination)
        let base = destination.split(separator: "/").last.map(String.init) ?? destination
        var template = Array("\(join(dir, ".\(base).\(tag)-XXXXXX"))".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw FormatError.io(file: destination, message: "cannot create a temporary file in \(dir): \(errnoString())")
        }
        self.fd = fd
        self.tempPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
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
                throw FormatError.io(file: destination, message: "write failed: \(errnoString())")
            }
            p += n; left -= n; off += n
        }
    }

    func setSize(_ size: Int) throws(FormatError) {
        guard ftruncate(fd, off_t(size)) == 0 else {
            throw FormatError.io(file: destination, message: "cannot set file size: \(errnoString())")
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
                throw FormatError.io(file: destination, message: "copying staged data failed: \(n < 0 ? errnoString() : "unexpected end of file")")
            }
            try write(UnsafeRawBufferPointer(start: buf, count: n), at: Int(outOff))
            inOff += off_t(n); outOff += off_t(n); left -= n
        }
    }

    /// Makes the file durable and visible under its destination name.
    func commit() throws(FormatError) {
        guard isOpen else { throw FormatError.io(file: destination, message: "the output was already finished or discarded") }
        guard fsync(fd) == 0 else {
            let m = errnoString(); discard()
            throw FormatError.io(file: destination, message: "fsync failed: \(m)")
        }
        close(fd)
        isOpen = false
        guard rename(tempPath, destination) == 0 else {
            let m = errnoString(); unlink(tempPath)
            throw FormatError.io(file: destination, message: "cannot rename the finished file into place: \(m)")
        }
        // The rename itself is only durable once the directory entry is.
        let dfd = open(parentDirectory(destination), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    func discard() {
        guard isOpen else { return }
        isOpen = false
        close(fd)
        unlink(tempPath)
    }
}

/// Writes a small file (config.json, an index, a report) so that readers see either the old
/// contents or the new, never a torn write.
public func writeFileAtomically(_ path: String, contents: [UInt8]) throws(FormatError) {
    let f = try AtomicFile(destination: path)
    try withBytes(contents) { (b) throws(FormatError) in try f.write(b, at: 0) }
    try f.commit()
}
