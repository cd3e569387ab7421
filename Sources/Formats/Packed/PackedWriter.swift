/// Writes a packed file (docs/FORMAT.md) tensor by tensor, with bounded memory.
///
/// Sections are appended as they come, each at a 64-byte boundary; the JSON header, which needs
/// every section's final offset, size and checksum, goes at the end, and the fixed preamble that
/// points at it is written last. Everything happens in a temporary file that only `finish`
/// renames into place, so an error, a dropped writer or an interrupt leaves no output.
public final class PackedWriter {
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

    public init(path: String) throws(FormatError) {
        self.path = path
        file = try AtomicFile(destination: path, tag: "partial")
        TemporaryFiles.register(file.tempPath)
    }

    deinit { TemporaryFiles.unregister(file.tempPath) }

    /// Bytes written so far.
    public var bytesWritten: Int { position }

    /// Appends one section. `encoding` other than `.raw` is a request: the bytes are compressed and
    /// stored compressed only when that saves `minimumSaving` or more.
    public func writeSection(_ bytes: UnsafeRawBufferPointer, encoding: SectionEncoding = .raw) throws(FormatError) -> PackedSection {
        if encoding != .raw, bytes.count >= 4096 {
            var staged: [UInt8]? = nil
            if let w = encoding.groupWidth, bytes.count % w == 0 {
                let grouped = Zstd.groupBytes(bytes, width: w)
                staged = grouped.withUnsafeBytes { Zstd.compress($0) }
            } else if encoding == .zstd {
                staged = Zstd.compress(bytes)
            }
            if let c = staged, Double(c.count) <= Double(bytes.count) * (1 - Self.minimumSaving) {
                compressedBytesSaved += bytes.count - c.count
                return try withBytes(c) { (cb) throws(FormatError) in
                    try append(cb, rawLength: bytes.count, encoding: encoding)
                }
            }
        }
        return try append(bytes, rawLength: bytes.count, encoding: .raw)
    }

    private func append(_ stored: UnsafeRawBufferPointer, rawLength: Int, encoding: SectionEncoding) throws(FormatError) -> PackedSection {
        let offset = position
        try file.write(stored, at: offset)
        let s = PackedSection(offset: offset, length: stored.count, rawLength: rawLength, encoding: encoding,
                              xxh64: XXH64.hash(stored))
        position = Self.align(offset + stored.count)
        return s
    }

    public func add(_ tensor: PackedTensor) throws(FormatError) {
        guard names.insert(tensor.name).inserted else {
            throw FormatError.invalidTensor(file: path, tensor: tensor.name, message: "written twice")
        }
        tensors.append(tensor)
    }

    /// Stores a named file (tokenizer.json, a calibration report) inside the pack.
    public func addBlob(_ name: String, _ bytes: [UInt8]) throws(FormatError) {
        let s = try withBytes(bytes) { (b) throws(FormatError) in try writeSection(b, encoding: .zstd) }
        blobs[name] = s.json
    }

    /// Writes the header and preamble, makes the file durable and moves it into place.
    /// `metadata` keys go at the top level of the header next to `tensors` and `blobs`.
    public func finish(metadata: JSONObject) throws(FormatError) {
        var header: JSONObject = ["format": "nemo-convert-packed", "version": .int(Int(Self.version))]
        for (k, v) in metadata where k != "tensors" && k != "blobs" { header[k] = v }
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
        TemporaryFiles.unregister(file.tempPath)
    }

    /// Abandons the output: the temporary file is removed.
    public func discard() {
        file.discard()
        TemporaryFiles.unregister(file.tempPath)
    }

    static func align(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}
