/// Writes a packed file (docs/FORMAT.md) tensor by tensor, with bounded memory.
///
/// Sections are appended as they come, each at a 64-byte boundary; the JSON header, which needs
/// every section's final offset, size and checksum, goes at the end, and the fixed preamble that
/// points at it is written last. Everything happens in a temporary file that only `finish`
/// renames into place, so an error, a dropped writer or an interrupt leaves no output.
///
/// It is the first `TensorSink`: the converter streams tensors into it through that interface.
public final class PackedWriter: TensorSink {
    public static let magic: [UInt8] = Array("NEMOPACK".utf8)
    public static let version: UInt32 = 1
    public static let preambleSize = 64
    public static let alignment = 64
    /// A compressed section is kept only if it saves at least this fraction; otherwise it is stored
    /// raw so readers can map it directly.
    public static let minimumSaving = 0.05

    public let path: String
    private let file: AtomicFile
    private var position = PackedWriter.preambleSize
    private var tensors: [PackedTensor] = []
    private var names = Set<String>()
    private var blobs = JSONObject()
    public private(set) var compressedBytesSaved = 0
    /// Bytes before this offset have been handed to the disk (`AtomicFile.startWriteback`).
    private var writebackFrom = 0
    static let writebackBytes = 64 << 20

    public init(path: String) throws(FormatError) {
        self.path = path
        // AtomicFile registers its temporary file for removal on interrupt.
        file = try AtomicFile(destination: path, tag: "partial")
    }

    /// Bytes written so far.
    public var bytesWritten: Int { position }
    /// Size of the finished file (valid after `finish`).
    public private(set) var fileSize = 0

    /// Appends one section. `encoding` other than `.raw` is a request: the bytes are compressed and
    /// stored compressed only when that saves `minimumSaving` or more.
    public func writeSection(_ bytes: UnsafeRawBufferPointer, encoding: SectionEncoding = .raw) throws(FormatError) -> PackedSection {
        try openSection(encoding: encoding)
        try appendPiece(bytes)
        return try closeSection()
    }

    private struct OpenSection {
        var offset: Int
        var length = 0
        var rawLength = 0
        var encoding: SectionEncoding
        var blockBytes = 0
        var decided = false
    }
    private var open: OpenSection?

    /// Starts a section written in pieces, so a tensor larger than memory streams through. With a
    /// compressed encoding each piece becomes its own zstd frame (byte-grouped within the piece);
    /// whether compression pays is decided on the first piece.
    func openSection(encoding: SectionEncoding = .raw) throws(FormatError) {
        precondition(open == nil, "a section is already open")
        open = OpenSection(offset: position, encoding: encoding)
    }

    func appendPiece(_ bytes: UnsafeRawBufferPointer) throws(FormatError) {
        guard var s = open else { preconditionFailure("no open section") }
        defer { open = s }
        if !s.decided {
            s.decided = true
            if s.encoding != .raw {
                if bytes.count >= 4096, let c = compressed(bytes, s.encoding),
                   Double(c.count) <= Double(bytes.count) * (1 - Self.minimumSaving) {
                    s.blockBytes = s.encoding.groupWidth != nil ? bytes.count : 0
                    try withBytes(c) { (cb) throws(FormatError) in try file.write(cb, at: s.offset + s.length) }
                    s.length += c.count; s.rawLength += bytes.count
                    compressedBytesSaved += bytes.count - c.count
                    return
                }
                s.encoding = .raw
            }
        } else if s.encoding != .raw {
            // Later pieces must match the first one's block size (except the last).
            if s.blockBytes > 0 && s.rawLength % s.blockBytes != 0 {
                preconditionFailure("only the last piece of a grouped section may be shorter than the first")
            }
            if s.blockBytes > 0 && bytes.count > s.blockBytes { preconditionFailure("piece larger than the first piece") }
            guard let c = compressed(bytes, s.encoding) else {
                throw FormatError.output(file: path, message: "zstd compression failed")
            }
            try withBytes(c) { (cb) throws(FormatError) in try file.write(cb, at: s.offset + s.length) }
            s.length += c.count; s.rawLength += bytes.count
            compressedBytesSaved += bytes.count - c.count
            return
        }
        try file.write(bytes, at: s.offset + s.length)
        s.length += bytes.count; s.rawLength += bytes.count
        // Large outputs go to disk while the rest is being converted, not all at fsync.
        if s.offset + s.length - writebackFrom >= Self.writebackBytes {
            file.startWriteback(offset: writebackFrom, count: s.offset + s.length - writebackFrom)
            writebackFrom = s.offset + s.length
        }
    }

    func closeSection() throws(FormatError) -> PackedSection {
        guard let s = open else { preconditionFailure("no open section") }
        open = nil
        // Hash what is on disk (in the page cache): the check covers the bytes as written.
        let h = try file.hashRange(offset: s.offset, count: s.length)
        position = Self.align(s.offset + s.length)
        return PackedSection(offset: s.offset, length: s.length, rawLength: s.rawLength, encoding: s.encoding,
                             xxh64: h, blockBytes: s.blockBytes)
    }

    /// The stored bytes of a raw section written earlier into this (unfinished) file, so a
    /// calibrated conversion can run the next layer on exactly what it wrote.
    public func readBack(_ s: PackedSection) throws(FormatError) -> [UInt8] {
        guard s.encoding == .raw else {
            throw FormatError.unsupported(file: path, tensor: nil, message: "read-back of a compressed section")
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, s.length), alignment: 64)
        defer { p.deallocate() }
        try file.read(offset: s.offset, count: s.length, into: p)
        return Array(UnsafeRawBufferPointer(start: p, count: s.length))
    }

    private func compressed(_ bytes: UnsafeRawBufferPointer, _ e: SectionEncoding) -> [UInt8]? {
        if let w = e.groupWidth {
            guard bytes.count % w == 0 else { return nil }
            let grouped = Zstd.groupBytes(bytes, width: w)
            return grouped.withUnsafeBytes { Zstd.compress($0) }
        }
        return Zstd.compress(bytes)
    }

    public func add(_ tensor: PackedTensor) throws(FormatError) {
        guard names.insert(tensor.name).inserted else {
            throw FormatError.invalidTensor(file: path, tensor: tensor.name, message: "written twice")
        }
        tensors.append(tensor)
    }

    /// A tensor added earlier, with its sections (for `readBack`).
    public func tensor(_ name: String) -> PackedTensor? { tensors.last(where: { $0.name == name }) }

    /// Stores a named file (tokenizer.json, a calibration report) inside the pack.
    public func addBlob(_ name: String, _ bytes: [UInt8]) throws(FormatError) {
        let s = try withBytes(bytes) { (b) throws(FormatError) in try writeSection(b, encoding: .zstd) }
        blobs[name] = s.json
    }

    /// Writes the header and preamble, makes the file durable and moves it into place.
    /// `metadata` keys go at the top level of the header next to `tensors` and `blobs`.
    public func finish(metadata: JSONObject) throws(FormatError) {
        var header: JSONObject = ["format": "nemo-convert-packed", "version": .int(Int(Self.version))]
        for (k, v) in metadata where k != "tensors" && k != "blobs" { header[k] = Self.portable(v) }
        header["blobs"] = .object(blobs)
        header["tensors"] = .array(tensors.map(\.json))
        let text = JSONWriter.bytes(.object(header))
        let headerOffset = position
        try withBytes(text) { (b) throws(FormatError) in try file.write(b, at: headerOffset) }
        try withBytes(Self.magic) { (b) throws(FormatError) in try file.write(b, at: headerOffset + text.count) }
        var pre = [UInt8](repeating: 0, count: Self.preambleSize)
        pre.replaceSubrange(0..<8, with: Self.magic)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
            withUnsafeBytes(of: v.littleEndian) { pre.replaceSubrange(at..<(at + MemoryLayout<T>.size), with: $0) }
        }
        put(Self.version, 8)
        put(UInt32(0), 12)
        put(UInt64(headerOffset), 16)
        put(UInt64(text.count), 24)
        put(text.withUnsafeBytes { XXH64.hash($0) }, 32)
        try withBytes(pre) { (b) throws(FormatError) in try file.write(b, at: 0) }
        try file.commit()
        fileSize = headerOffset + text.count + Self.magic.count
    }

    /// Abandons the output: the temporary file is removed.
    public func discard() {
        file.discard()
    }

    // MARK: TensorSink

    /// A packed file stores every scheme, mixed per row segment, with any scale type.
    public static let sinkRules = SinkRules.anything
    public var rules: SinkRules { Self.sinkRules }

    private var current: (tensor: SinkTensor, sections: [String: PackedSection], section: String?)?

    public func beginTensor(_ tensor: SinkTensor) throws(FormatError) {
        precondition(current == nil, "tensor \(current!.tensor.name) is still open")
        current = (tensor, [:], nil)
    }

    public func beginSection(_ name: String, encoding: SectionEncoding) throws(FormatError) {
        precondition(current != nil && current!.section == nil, "no open tensor, or a section is already open")
        guard current!.sections[name] == nil else {
            throw FormatError.invalidTensor(file: path, tensor: current!.tensor.name, message: "section '\(name)' written twice")
        }
        current!.section = name
        try openSection(encoding: encoding)
    }

    public func appendToSection(_ bytes: UnsafeRawBufferPointer) throws(FormatError) { try appendPiece(bytes) }

    public func endSection() throws(FormatError) {
        let s = try closeSection()
        current!.sections[current!.section!] = s
        current!.section = nil
    }

    @discardableResult
    public func endTensor(attributes: JSONObject) throws(FormatError) -> Int {
        guard let c = current, c.section == nil else { preconditionFailure("no open tensor, or a section is still open") }
        current = nil
        let t = c.tensor
        try add(PackedTensor(name: t.name, role: t.role, layer: t.layer, expert: t.expert, shape: t.shape, scheme: t.scheme,
                             sourceDType: t.sourceDType, sections: c.sections, attributes: attributes))
        return c.sections.values.reduce(0) { $0 + $1.length }
    }

    public func readBack(tensor name: String, section: String) throws(FormatError) -> [UInt8]? {
        guard let s = tensor(name)?.sections[section] else {
            throw FormatError.invalidTensor(file: path, tensor: name, message: "missing section '\(section)'")
        }
        return s.encoding == .raw ? try readBack(s) : nil
    }

    /// JSON has no Infinity or NaN; config.json files carry them (time_step_limit), so they are
    /// written the way transformers 5 writes them, `{"__float__": "Infinity"}`, which every
    /// config reader of ours accepts.
    static func portable(_ v: JSONValue) -> JSONValue {
        switch v {
        case .number(let d) where !d.isFinite:
            return .object(["__float__": .string(d.isNaN ? "NaN" : d > 0 ? "Infinity" : "-Infinity")])
        case .array(let a): return .array(a.map(portable))
        case .object(let o):
            var r = JSONObject()
            for (k, x) in o { r[k] = portable(x) }
            return .object(r)
        default: return v
        }
    }

    static func align(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}
