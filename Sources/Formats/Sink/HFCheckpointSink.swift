#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a Hugging Face model directory: sharded safetensors (`model-0000i-of-0000n.safetensors`
/// and `model.safetensors.index.json`, or one `model.safetensors`), config.json with the format's
/// `quantization_config`, the format's side files, and the tokenizer and generation files.
/// What a tensor's sections become is the `HFExportLayout`'s business (compressed-tensors,
/// ModelOpt); this type only streams, shards and commits.
///
/// Atomic as a whole: everything is written into a hidden temporary directory next to the output
/// (`.NAME.partial-XXXXXX`, same file system), each shard itself through `AtomicFile`; `finish`
/// renames the shards to their final names, fsyncs, and renames the directory into place. The
/// output must not exist or be an empty directory, so the rename can never replace anything,
/// least of all an input. On error, `discard`, or a signal, the temporary directory is removed.
public final class HFCheckpointSink: TensorSink {
    public let path: String
    public let layout: any HFExportLayout
    /// A new shard starts before a tensor that would take the current one past this size.
    public let shardBytes: Int
    /// Files copied into the output next to the weights (tokenizer, generation config, remote code).
    public var extraFiles: [(name: String, bytes: [UInt8])] = []
    public var rules: SinkRules { layout.rules }

    private let tempDir: String
    private var shards: [(writer: SafetensorsWriter, path: String)] = []
    private var shardFill = 0
    private var written: [HFWrittenTensor] = []
    private var weightMap: [(String, Int)] = []
    private var state = State.writing
    private enum State { case writing, finished, failed }

    // The open tensor.
    private var current: SinkTensor?
    private var plan: HFTensorPlan?
    private var section: String?
    private var small: [String: [UInt8]] = [:]
    private var carry: [UInt8] = []
    private var row: UnsafeMutableRawPointer?
    private var mainWritten = 0
    /// Copies of every codec section, for `readBack` (sequential calibration); nil when not kept.
    private var journal: AtomicFile?
    private var journalEnd = 0
    private var journalIndex: [String: (offset: Int, count: Int)] = [:]
    private var journalOpen: (key: String, offset: Int)?

    /// `keepReadBack`: keep a copy of each section as the codec wrote it, so a sequential
    /// calibration can run the next layer on exactly what was exported.
    public init(directory: String, layout: any HFExportLayout, shardBytes: Int = 5_000_000_000,
                keepReadBack: Bool = false) throws(FormatError) {
        path = directory
        self.layout = layout
        self.shardBytes = max(1, shardBytes)
        try Self.checkOutput(directory)
        let parent = parentDirectory(directory)
        let base = directory.split(separator: "/").last.map(String.init) ?? directory
        var template = Array(join(parent, ".\(base).partial-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw FormatError.output(file: directory, message: "cannot create a temporary directory in \(parent): \(errnoString())")
        }
        tempDir = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        _ = chmod(tempDir, 0o755)
        TemporaryFiles.register(tempDir)
        if keepReadBack { journal = try AtomicFile(destination: join(tempDir, "readback"), tag: "data") }
    }

    deinit { if state == .writing { discard() } }

    /// An output directory must not exist, or be an empty directory: the finished export is
    /// renamed onto it, which may replace nothing.
    public static func checkOutput(_ directory: String) throws(FormatError) {
        var st = stat()
        guard lstat(directory, &st) == 0 else {
            if errno == ENOENT { return }
            throw FormatError.output(file: directory, message: "cannot inspect the output path: \(errnoString())")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw FormatError.output(file: directory, message: "exists and is not a directory; a Hugging Face export is a new (or empty) directory")
        }
        guard let d = opendir(directory) else {
            throw FormatError.output(file: directory, message: "cannot read the directory: \(errnoString())")
        }
        defer { closedir(d) }
        while let e = readdir(d) {
            let name = String(cString: (UnsafeRawPointer(e) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!)
                .assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." {
                throw FormatError.output(file: directory, message: "is not empty ('\(name)'); the export goes into a new or empty directory and never replaces files")
            }
        }
    }

    // MARK: TensorSink

    public func beginTensor(_ tensor: SinkTensor) throws(FormatError) {
        try guarded { () throws(FormatError) in
            precondition(current == nil, "tensor \(current!.name) is still open")
            let p = try layout.plan(tensor)
            if shards.isEmpty || (shardFill > 0 && shardFill + p.main.byteCount > shardBytes) { try newShard() }
            try shards[shards.count - 1].writer.begin(p.main)
            shardFill += p.main.byteCount
            current = tensor; plan = p; small = [:]; carry = []; mainWritten = 0
            if p.storedRowBytes > 0 { row = UnsafeMutableRawPointer.allocate(byteCount: p.storedRowBytes, alignment: 64) }
        }
    }

    public func beginSection(_ name: String, encoding: SectionEncoding) throws(FormatError) {
        precondition(current != nil && section == nil, "no open tensor, or a section is already open")
        section = name
        if !isCodes(name) { small[name] = [] }
        if let j = journal { journalOpen = (current!.name + "\u{0}" + name, journalEnd); _ = j }
    }

    public func appendToSection(_ bytes: UnsafeRawBufferPointer) throws(FormatError) {
        try guarded { () throws(FormatError) in
            guard let name = section else { preconditionFailure("no open section") }
            if let j = journal { try j.write(bytes, at: journalEnd); journalEnd += bytes.count }
            if !isCodes(name) { small[name]!.append(contentsOf: bytes); return }
            try writeCodes(bytes)
        }
    }

    public func endSection() throws(FormatError) {
        if let o = journalOpen { journalIndex[o.key] = (o.offset, journalEnd - o.offset); journalOpen = nil }
        section = nil
    }

    @discardableResult
    public func endTensor(attributes: JSONObject) throws(FormatError) -> Int {
        var total = 0
        try guarded { () throws(FormatError) in
            guard let t = current, let p = plan, section == nil else { preconditionFailure("no open tensor, or a section is still open") }
            guard carry.isEmpty, mainWritten == p.main.byteCount else {
                throw FormatError.invalidTensor(file: path, tensor: p.main.name, message:
                    "codes filled \(mainWritten) of \(p.main.byteCount) bytes (\(carry.count) bytes of a partial row left)")
            }
            let segs = try hfSegments(attributes, tensor: t, file: path)
            let side = try layout.sideTensors(t, plan: p, segments: segs, sections: small, attributes: attributes)
            let shard = shards.count
            var stored = [p.main]
            for (d, b) in side {
                try shards[shard - 1].writer.append(d.name, dtype: d.dtype, shape: d.shape, bytes: b)
                shardFill += b.count
                stored.append(d)
            }
            for d in stored { weightMap.append((d.name, shard)) }
            written.append(HFWrittenTensor(tensor: t, scheme: segs.first?.scheme ?? t.scheme, stored: stored))
            total = stored.reduce(0) { $0 + $1.byteCount }
            row?.deallocate(); row = nil
            current = nil; plan = nil; small = [:]
        }
        return total
    }

    public func readBack(tensor: String, section: String) throws(FormatError) -> [UInt8]? {
        guard let j = journal else {
            throw FormatError.unsupported(file: path, tensor: tensor, message: "this export keeps no copy of what it wrote (keepReadBack)")
        }
        guard let e = journalIndex[tensor + "\u{0}" + section] else {
            throw FormatError.invalidTensor(file: path, tensor: tensor, message: "missing section '\(section)'")
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, e.count), alignment: 64)
        defer { p.deallocate() }
        try j.read(offset: e.offset, count: e.count, into: p)
        return Array(UnsafeRawBufferPointer(start: p, count: e.count))
    }

    public func addBlob(_ name: String, _ bytes: [UInt8]) throws(FormatError) {
        // Only plain file names: a blob never lands outside the export.
        guard !name.contains("/"), !name.hasPrefix("."), !name.isEmpty else {
            throw FormatError.output(file: path, message: "refusing to store a file named '\(name)'")
        }
        extraFiles.removeAll { $0.name == name }
        extraFiles.append((name, bytes))
    }

    /// `metadata["model"]` is the source config.json; it is written with the layout's
    /// `quantization_config` in place of any the source had.
    public func finish(metadata: JSONObject) throws(FormatError) {
        try guarded { () throws(FormatError) in
            precondition(current == nil, "a tensor is still open")
            if shards.isEmpty { try newShard() }
            try shards[shards.count - 1].writer.finish()
            TemporaryFiles.register(shards[shards.count - 1].path)
            journal?.discard(); journal = nil
            let n = shards.count
            func final(_ i: Int) -> String {
                n == 1 ? "model.safetensors" : "model-\(pad5(i + 1))-of-\(pad5(n)).safetensors"
            }
            for (i, s) in shards.enumerated() {
                guard rename(s.path, join(tempDir, final(i))) == 0 else {
                    throw FormatError.output(file: path, message: "cannot rename shard \(i + 1): \(errnoString())")
                }
                TemporaryFiles.unregister(s.path)
                TemporaryFiles.register(join(tempDir, final(i)))
            }
            if n > 1 {
                var map = JSONObject()
                for (name, shard) in weightMap { map[name] = .string(final(shard - 1)) }
                let total = written.reduce(0) { $0 + $1.stored.reduce(0) { $0 + $1.byteCount } }
                let index: JSONValue = ["metadata": ["total_size": .int(total)], "weight_map": .object(map)]
                try writeFileAtomically(join(tempDir, "model.safetensors.index.json"), contents: JSONWriter.bytes(index, options: .init(pretty: true)) + [0x0A])
            }
            let (qc, files) = try layout.finish(written: written)
            var config = metadata["model"]?.objectValue ?? JSONObject()
            config["quantization_config"] = qc
            if qc == nil { config["quantization_config"] = nil }
            let configBytes = JSONWriter.bytes(PackedWriter.portable(.object(config)), options: .init(pretty: true)) + [0x0A]
            try writeFileAtomically(join(tempDir, "config.json"), contents: configBytes)
            for (name, bytes) in files + extraFiles.map({ ($0.name, $0.bytes) }) where name != "config.json" {
                try writeFileAtomically(join(tempDir, name), contents: bytes)
            }
            // The empty output directory the user may have made is replaced by the finished one.
            var st = stat()
            if lstat(path, &st) == 0 {
                try Self.checkOutput(path)
                guard rmdir(path) == 0 else { throw FormatError.output(file: path, message: "cannot replace the empty directory: \(errnoString())") }
            }
            guard rename(tempDir, path) == 0 else {
                throw FormatError.output(file: path, message: "cannot rename the finished export into place: \(errnoString())")
            }
            TemporaryFiles.unregister(tempDir)
            for i in 0..<n { TemporaryFiles.unregister(join(tempDir, final(i))) }
            let dfd = open(parentDirectory(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 { _ = fsync(dfd); close(dfd) }
            state = .finished
        }
    }

    public func discard() {
        guard state == .writing else { return }
        state = .failed
        for s in shards { s.writer.abandon() }
        journal?.discard()
        row?.deallocate(); row = nil
        Self.removeTree(tempDir)
        TemporaryFiles.unregister(tempDir)
        for s in shards { TemporaryFiles.unregister(s.path) }
    }

    /// Bytes of every stored tensor (after `finish`).
    public var fileSize: Int { written.reduce(0) { $0 + $1.stored.reduce(0) { $0 + $1.byteCount } } }
    public var compressedBytesSaved: Int { 0 }
    /// What was written, in order (for reports and tests).
    public var writtenTensors: [HFWrittenTensor] { written }

    // MARK: Internals

    private func isCodes(_ section: String) -> Bool { section == "codes" || section.hasSuffix(".codes") }

    private func newShard() throws(FormatError) {
        if let last = shards.last { try last.writer.finish(); TemporaryFiles.register(last.path) }
        let p = join(tempDir, "shard-\(shards.count + 1).safetensors")
        shards.append((try SafetensorsWriter(path: p, metadata: ["format": "pt"]), p))
        shardFill = 0
    }

    /// Streams code bytes into the main tensor, a whole row at a time where the layout rewrites rows.
    private func writeCodes(_ bytes: UnsafeRawBufferPointer) throws(FormatError) {
        let p = plan!, w = shards[shards.count - 1].writer
        guard let f = p.transformRow, let row else {
            try w.write(p.main.name, bytes: bytes)
            mainWritten += bytes.count
            return
        }
        var off = 0
        let n = p.sourceRowBytes
        if !carry.isEmpty {
            let take = min(n - carry.count, bytes.count)
            carry.append(contentsOf: bytes[0..<take])
            off = take
            if carry.count == n {
                carry.withUnsafeBytes { f($0.baseAddress!, row) }
                try w.write(p.main.name, bytes: UnsafeRawBufferPointer(start: row, count: p.storedRowBytes))
                mainWritten += p.storedRowBytes
                carry = []
            }
        }
        // Whole rows, rewritten into one buffer per 1 MB so the writer gets few large calls.
        let rowsPerBatch = max(1, (1 << 20) / max(1, p.storedRowBytes))
        let batch = UnsafeMutableRawPointer.allocate(byteCount: rowsPerBatch * p.storedRowBytes, alignment: 64)
        defer { batch.deallocate() }
        while bytes.count - off >= n {
            let m = min(rowsPerBatch, (bytes.count - off) / n)
            for i in 0..<m { f(bytes.baseAddress! + off + i * n, batch + i * p.storedRowBytes) }
            try w.write(p.main.name, bytes: UnsafeRawBufferPointer(start: batch, count: m * p.storedRowBytes))
            mainWritten += m * p.storedRowBytes
            off += m * n
        }
        if off < bytes.count { carry.append(contentsOf: bytes[off...]) }
    }

    private func guarded(_ body: () throws(FormatError) -> Void) throws(FormatError) {
        guard state == .writing else {
            throw FormatError.output(file: path, message: state == .finished ? "the export is already finished" : "an earlier error abandoned this export")
        }
        do throws(FormatError) { try body() } catch { discard(); throw error }
    }

    private func pad5(_ i: Int) -> String { let s = String(i); return String(repeating: "0", count: max(0, 5 - s.count)) + s }

    /// Removes a directory this sink made and the plain files in it.
    static func removeTree(_ dir: String) {
        if let d = opendir(dir) {
            var names: [String] = []
            while let e = readdir(d) {
                let name = String(cString: (UnsafeRawPointer(e) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!)
                    .assumingMemoryBound(to: CChar.self))
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(d)
            for n in names { unlink(join(dir, n)) }
        }
        rmdir(dir)
    }
}
