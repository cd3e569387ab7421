/// A packed file, mapped and validated (docs/FORMAT.md).
///
/// Opening checks the preamble, the trailing magic (a truncated file fails here), the header's
/// checksum, that every section lies inside the data area, 64-byte aligned, without overlap, and
/// that the tensor table is the model its embedded config describes (`checkTensorTable`).
/// Section checksums are checked whenever a section is read in full, and by `verify()`.
public final class PackedFile: @unchecked Sendable {
    public let path: String
    public let file: MappedFile
    public let header: JSONObject
    public let tensors: [PackedTensor]
    public let blobs: [String: PackedSection]
    public let config: ModelConfig
    private let byName: [String: Int]

    /// True when the file starts with the packed-file magic (used to tell packed files from
    /// safetensors when a MODEL argument may be either).
    public static func isPacked(path: String) -> Bool {
        guard let f = try? MappedFile(path: path), f.count >= 8 else { return false }
        return withExtendedLifetime(f) { Array(f.bytes[0..<8]) == PackedWriter.magic }
    }

    public convenience init(path: String) throws(FormatError) {
        try self.init(file: MappedFile(path: path))
    }

    /// Validates a packed file already in memory or mapped (`file.path` names it in errors), as
    /// mutation fuzzers do without touching the disk.
    public init(file: MappedFile) throws(FormatError) {
        let path = file.path
        self.path = path
        self.file = file
        let b = file.bytes, size = b.count
        func bad(_ m: String) -> FormatError { .invalidHeader(file: path, message: m) }
        guard size >= PackedWriter.preambleSize + 8 else { throw bad("file is \(size) bytes, too short for a packed file (truncated?)") }
        guard Array(b[0..<8]) == PackedWriter.magic else { throw bad("not a nemo-convert packed file (bad magic)") }
        let version = b.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian
        guard version == PackedWriter.version else {
            throw FormatError.unsupported(file: path, tensor: nil, message: "packed format version \(version) is not supported (this build reads version \(PackedWriter.version))")
        }
        // A version-1 reader refuses what it does not know: flags are for features a later writer
        // may add, and reserved bytes must stay zero until a version gives them meaning.
        let flags = b.loadUnaligned(fromByteOffset: 12, as: UInt32.self).littleEndian
        guard flags == 0 else {
            throw FormatError.unsupported(file: path, tensor: nil, message: "packed file sets flags 0x\(String(flags, radix: 16)), which version \(version) does not define")
        }
        if let i = (40..<PackedWriter.preambleSize).first(where: { b[$0] != 0 }) {
            throw FormatError.unsupported(file: path, tensor: nil, message: "reserved preamble byte \(i) is 0x\(String(b[i], radix: 16)), not 0")
        }
        let ho = b.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian
        let hl = b.loadUnaligned(fromByteOffset: 24, as: UInt64.self).littleEndian
        let hsum = b.loadUnaligned(fromByteOffset: 32, as: UInt64.self).littleEndian
        guard ho >= UInt64(PackedWriter.preambleSize), hl <= UInt64(size), ho <= UInt64(size) - hl,
              Int(ho) + Int(hl) + 8 == size else {
            throw bad("header at \(ho) of \(hl) bytes does not end 8 bytes before the end of the \(size)-byte file (truncated or appended to?)")
        }
        let headerOffset = Int(ho), headerLength = Int(hl)
        guard Array(b[(size - 8)..<size]) == PackedWriter.magic else { throw bad("trailing magic missing (truncated file?)") }
        let hb = UnsafeRawBufferPointer(rebasing: b[headerOffset..<(headerOffset + headerLength)])
        guard XXH64.hash(hb) == hsum else { throw bad("header checksum mismatch (corrupt file)") }
        let json: JSONValue
        do { json = try JSONParser.parse(hb) } catch { throw bad("header is not valid JSON: \(error)") }
        guard let h = json.objectValue else { throw bad("header is not a JSON object") }
        header = h
        guard let ta = h["tensors"]?.arrayValue else { throw bad("header has no tensor table") }
        var list: [PackedTensor] = []
        var idx: [String: Int] = [:]
        var spans: [(Int, Int, String)] = []
        for t in ta {
            let pt = try PackedTensor(json: t, file: path)
            guard idx[pt.name] == nil else { throw FormatError.invalidTensor(file: path, tensor: pt.name, message: "appears twice in the tensor table") }
            idx[pt.name] = list.count
            list.append(pt)
            for (k, s) in pt.sections { spans.append((s.offset, s.length, "\(pt.name) (\(k))")) }
        }
        var blobs: [String: PackedSection] = [:]
        for (k, v) in h["blobs"]?.objectValue ?? JSONObject() {
            let s = try PackedSection(json: v, file: path, owner: "blob \(k)")
            guard s.rawLength <= Self.maxBlobBytes else {
                throw FormatError.invalidTensor(file: path, tensor: "blob \(k)", message: "raw_length \(s.rawLength) exceeds the \(Self.maxBlobBytes)-byte limit for a stored file")
            }
            blobs[k] = s
            spans.append((s.offset, s.length, "blob \(k)"))
        }
        spans.sort { $0.0 < $1.0 }
        var end = PackedWriter.preambleSize
        for (off, len, owner) in spans {
            guard off % PackedWriter.alignment == 0 else {
                throw FormatError.invalidTensor(file: path, tensor: owner, message: "section offset \(off) is not \(PackedWriter.alignment)-byte aligned")
            }
            guard off >= end else { throw FormatError.invalidTensor(file: path, tensor: owner, message: "section at \(off) overlaps the previous one") }
            guard len <= headerOffset - off else {
                throw FormatError.invalidTensor(file: path, tensor: owner, message: "section at \(off) of \(len) bytes runs past the data area (truncated?)")
            }
            end = off + len
        }
        tensors = list
        byName = idx
        self.blobs = blobs
        guard let model = h["model"] else { throw bad("header has no model config") }
        config = try ModelConfig(json: model, file: path + " (embedded config.json)")
        try Self.checkTensorTable(list, config: config, file: path)
    }

    public func tensor(_ name: String) -> PackedTensor? { byName[name].map { tensors[$0] } }

    /// The stored bytes of a section, checksum verified. Points into the mapping: keep `self` alive.
    public func stored(_ s: PackedSection, owner: String) throws(FormatError) -> UnsafeRawBufferPointer {
        let b = UnsafeRawBufferPointer(rebasing: file.bytes[s.offset..<(s.offset + s.length)])
        let h = XXH64.hash(b)
        guard h == s.xxh64 else {
            throw FormatError.checksum(file: path, tensor: owner, message: "xxh64 \(XXH64.hex(h)), header says \(XXH64.hex(s.xxh64))")
        }
        return b
    }

    /// Decodes a section into `out` (`s.rawLength` bytes), verifying its checksum first.
    public func read(_ s: PackedSection, owner: String, into out: UnsafeMutableRawBufferPointer) throws(FormatError) {
        precondition(out.count == s.rawLength)
        let b = try stored(s, owner: owner)
        switch s.encoding {
        case .raw:
            if s.length > 0 { out.baseAddress!.copyMemory(from: b.baseAddress!, byteCount: s.length) }
        case .zstd:
            if let e = Zstd.decompress(b, into: out) { throw FormatError.checksum(file: path, tensor: owner, message: "zstd: \(e)") }
        case .zstdBytes2, .zstdBytes4:
            let tmp = UnsafeMutableRawBufferPointer.allocate(byteCount: s.rawLength, alignment: 64)
            defer { tmp.deallocate() }
            if let e = Zstd.decompress(b, into: tmp) { throw FormatError.checksum(file: path, tensor: owner, message: "zstd: \(e)") }
            let block = s.blockBytes > 0 ? s.blockBytes : max(1, s.rawLength)
            var at = 0
            while at < s.rawLength {
                let n = min(block, s.rawLength - at)
                Zstd.ungroupBytes(UnsafeRawBufferPointer(rebasing: tmp[at..<(at + n)]), width: s.encoding.groupWidth!,
                                  into: out.baseAddress! + at)
                at += n
            }
        }
    }

    /// A section decoded into a new array.
    public func bytes(_ s: PackedSection, owner: String) throws(FormatError) -> [UInt8] {
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: s.rawLength, alignment: 64)
        defer { out.deallocate() }
        try read(s, owner: owner, into: out)
        return Array(out)
    }

    public func blob(_ name: String) throws(FormatError) -> [UInt8]? {
        guard let s = blobs[name] else { return nil }
        return try bytes(s, owner: "blob \(name)")
    }

    /// Checks every section's checksum; the first mismatch is an error naming its tensor.
    public func verify() throws(FormatError) {
        for t in tensors {
            for k in t.sections.keys.sorted() { _ = try stored(t.sections[k]!, owner: "\(t.name) (\(k))") }
        }
        for (k, s) in blobs { _ = try stored(s, owner: "blob \(k)") }
    }
}
