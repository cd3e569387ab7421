/// How a section's bytes are stored.
public enum SectionEncoding: String, Sendable, Codable {
    /// Stored as-is: a reader can point straight into the mapping.
    case raw
    /// One zstd frame of the bytes.
    case zstd
    /// One zstd frame of the bytes regrouped into 2 (BF16/F16) or 4 (F32) byte planes.
    case zstdBytes2 = "zstd-bytegroup2"
    case zstdBytes4 = "zstd-bytegroup4"

    var groupWidth: Int? {
        switch self {
        case .zstdBytes2: return 2
        case .zstdBytes4: return 4
        default: return nil
        }
    }
}

/// One contiguous, 64-byte-aligned run of bytes in a packed file, with the checksum of what is
/// stored there.
public struct PackedSection: Equatable, Sendable {
    /// Absolute byte offset in the file.
    public var offset: Int
    /// Bytes stored in the file.
    public var length: Int
    /// Bytes after decoding (equal to `length` for raw sections).
    public var rawLength: Int
    public var encoding: SectionEncoding
    /// xxHash64 of the stored bytes.
    public var xxh64: UInt64
    /// For byte-grouped encodings: the bytes are grouped (and compressed as one zstd frame) in
    /// independent blocks of this many raw bytes, the last one possibly shorter; 0 = one block.
    public var blockBytes: Int

    public init(offset: Int, length: Int, rawLength: Int, encoding: SectionEncoding, xxh64: UInt64, blockBytes: Int = 0) {
        self.offset = offset; self.length = length; self.rawLength = rawLength; self.encoding = encoding; self.xxh64 = xxh64
        self.blockBytes = blockBytes
    }

    var json: JSONValue {
        var o: JSONObject = ["offset": .int(offset), "length": .int(length), "raw_length": .int(rawLength),
                             "encoding": .string(encoding.rawValue), "xxh64": .string(XXH64.hex(xxh64))]
        if blockBytes > 0 { o["block_bytes"] = .int(blockBytes) }
        return .object(o)
    }

    init(json: JSONValue, file: String, owner: String) throws(FormatError) {
        func bad(_ m: String) -> FormatError { .invalidTensor(file: file, tensor: owner, message: m) }
        guard let o = json.objectValue else { throw bad("section is not an object") }
        guard let off = o["offset"]?.intValue, let len = o["length"]?.intValue, let raw = o["raw_length"]?.intValue,
              off >= 0, len >= 0, raw >= 0 else { throw bad("section needs non-negative integer offset, length and raw_length") }
        guard let es = o["encoding"]?.stringValue, let enc = SectionEncoding(rawValue: es) else {
            throw bad("section has unknown encoding \(o["encoding"].map { "\($0)" } ?? "(missing)")")
        }
        guard let hs = o["xxh64"]?.stringValue, hs.count == 16, let h = UInt64(hs, radix: 16) else {
            throw bad("section xxh64 must be 16 hex digits")
        }
        if enc == .raw && raw != len { throw bad("raw section has length \(len) but raw_length \(raw)") }
        // zstd cannot do better than a 4-byte RLE block per 128 KiB (32768:1); a larger claim
        // would only make a reader allocate for bytes the section cannot hold.
        if enc != .raw && raw / 65536 > len {
            throw bad("raw_length \(raw) is more than zstd can encode in \(len) bytes")
        }
        let bb = o["block_bytes"]?.intValue ?? 0
        if bb < 0 || (bb > 0 && enc.groupWidth.map({ bb % $0 != 0 }) ?? true) {
            throw bad("block_bytes \(bb) must be a positive multiple of the group width")
        }
        self.init(offset: off, length: len, rawLength: raw, encoding: enc, xxh64: h, blockBytes: bb)
    }
}

/// One tensor of a packed file: what it is, how it is encoded, and where its parts are.
public struct PackedTensor: Equatable, Sendable {
    public var name: String
    public var role: TensorRole
    public var layer: Int?
    public var expert: Int?
    public var shape: [Int]
    /// Scheme spelling of the Quantize module (`int8`, `int4-g128-sym`, `fp8-channel`, `bf16`, ...).
    public var scheme: String
    /// The dtype the source checkpoint stored it in.
    public var sourceDType: DType
    /// Named parts: `codes`, and where the scheme has them `scales`, `zero_points`, `input_scale`.
    public var sections: [String: PackedSection]
    /// Scheme-specific facts a reader needs (e.g. row blocks of per-SSM-head scales).
    public var attributes: JSONObject

    public init(name: String, role: TensorRole, layer: Int?, expert: Int?, shape: [Int], scheme: String,
                sourceDType: DType, sections: [String: PackedSection], attributes: JSONObject = JSONObject()) {
        self.name = name; self.role = role; self.layer = layer; self.expert = expert; self.shape = shape
        self.scheme = scheme; self.sourceDType = sourceDType; self.sections = sections; self.attributes = attributes
    }

    var json: JSONValue {
        var o: JSONObject = ["name": .string(name), "role": .string(role.rawValue),
                             "shape": .array(shape.map { .int($0) }), "scheme": .string(scheme),
                             "source_dtype": .string(sourceDType.rawValue)]
        if let l = layer { o["layer"] = .int(l) }
        if let e = expert { o["expert"] = .int(e) }
        var s = JSONObject()
        for k in sections.keys.sorted() { s[k] = sections[k]!.json }
        o["sections"] = .object(s)
        if attributes.count > 0 { o["attributes"] = .object(attributes) }
        return .object(o)
    }

    init(json: JSONValue, file: String) throws(FormatError) {
        guard let o = json.objectValue, let name = o["name"]?.stringValue else {
            throw FormatError.invalidHeader(file: file, message: "tensor entry without a name")
        }
        func bad(_ m: String) -> FormatError { .invalidTensor(file: file, tensor: name, message: m) }
        guard let rs = o["role"]?.stringValue, let role = TensorRole(rawValue: rs) else { throw bad("unknown or missing role") }
        guard let sa = o["shape"]?.arrayValue else { throw bad("missing shape") }
        var shape: [Int] = []
        for d in sa {
            guard let v = d.intValue, v >= 0 else { throw bad("shape entries must be non-negative integers") }
            shape.append(v)
        }
        guard let scheme = o["scheme"]?.stringValue else { throw bad("missing scheme") }
        guard let ds = o["source_dtype"]?.stringValue, let dt = DType(rawValue: ds) else { throw bad("missing or unknown source_dtype") }
        guard let so = o["sections"]?.objectValue else { throw bad("missing sections") }
        var sections: [String: PackedSection] = [:]
        for (k, v) in so { sections[k] = try PackedSection(json: v, file: file, owner: "\(name) (\(k))") }
        let layer = o["layer"]?.intValue, expert = o["expert"]?.intValue
        self.init(name: name, role: role, layer: layer, expert: expert, shape: shape, scheme: scheme,
                  sourceDType: dt, sections: sections, attributes: o["attributes"]?.objectValue ?? JSONObject())
    }
}
