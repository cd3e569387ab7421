#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An output that would destroy something: the same file as an input or as another output, or an
/// existing path that is not a regular file. A usage error (exit 64): nothing was read or written.
public struct OutputConflict: Error, Equatable, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// A file as the kernel knows it. Two paths name the same file when these agree, whatever links,
/// `..` or bind mounts sit between them.
struct FileIdentity: Hashable {
    var device: UInt64
    var inode: UInt64

    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}

/// Where outputs may go. Every writer replaces its destination by renaming a temporary file over
/// it, so the checks here are about what that rename would destroy.
public enum OutputPath {
    /// The path a rename should replace for output `path`: a symbolic link's final target (so the
    /// link keeps pointing at the new file instead of being replaced by it), or `path` itself.
    /// Refuses an existing path that is not a regular file (a directory, a device such as
    /// /dev/null, a FIFO): renaming over it would replace the node, and writing through a device
    /// is not a conversion.
    public static func destination(_ path: String) throws(OutputConflict) -> String {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return path }
            throw OutputConflict("\(path): cannot inspect the output path: \(errnoString())")
        }
        var target = path
        if (st.st_mode & S_IFMT) == S_IFLNK {
            guard let r = realpath(path, nil) else {
                let why = errno == ELOOP ? "a symbolic link loop" : "a symbolic link to a missing file"
                throw OutputConflict("\(path) is \(why); name the file to write instead")
            }
            target = String(cString: r)
            free(r)
            guard stat(target, &st) == 0 else { return target }
        }
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFREG else {
            throw OutputConflict("\(path) exists and is \(fileKind(kind)), not a regular file; the output is written to a "
                                 + "temporary file and renamed over it, which would replace it (name a regular file)")
        }
        return target
    }

    /// Refuses outputs that are the same file as an input or as each other. Inputs are every file
    /// a command reads (a checkpoint's config.json, index, shards and tokenizer.json included);
    /// each comes with the name the user knows it by, for the message.
    public static func check(outputs: [(option: String, path: String)],
                             inputs: [(what: String, path: String)]) throws(OutputConflict) {
        var seen: [(option: String, path: String, key: String)] = []
        for o in outputs {
            let dest: String
            do { dest = try destination(o.path) } catch { throw OutputConflict("\(o.option) \(error.description)") }
            if let id = FileIdentity(path: dest) {
                for i in inputs where FileIdentity(path: i.path) == id {
                    throw OutputConflict("\(o.option) \(o.path) is the same file as \(i.what) \(i.path); "
                                         + "refusing to overwrite an input (choose another output path)")
                }
            }
            // Existing files compare by identity (hard links too); new ones by where they will be.
            let key = FileIdentity(path: dest).map { "\($0.device):\($0.inode)" } ?? canonical(dest)
            if let other = seen.first(where: { $0.key == key }) {
                throw OutputConflict("\(o.option) \(o.path) and \(other.option) \(other.path) are the same file; "
                                     + "one would replace the other (choose different paths)")
            }
            seen.append((o.option, o.path, key))
        }
    }

    /// The absolute path of a file that may not exist yet: its directory resolved, its name kept.
    static func canonical(_ path: String) -> String {
        let dir = parentDirectory(path)
        let base = path.split(separator: "/").last.map(String.init) ?? path
        guard let r = realpath(dir, nil) else { return path }
        defer { free(r) }
        return join(String(cString: r), base)
    }
}
