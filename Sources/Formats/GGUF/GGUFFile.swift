/// A GGUF file (llama.cpp's model format, versions 2 and 3) mapped read-only and validated as
/// strictly as a safetensors file: nothing in it is trusted before it is checked against the
/// file's size.
///
/// Layout: magic `GGUF`, version (u32), tensor count and metadata count (u64), the metadata
/// key/value pairs, the tensor infos (name, dimensions in ggml order — fastest first —, ggml type,
/// offset into the data area), padding to `general.alignment` (32 by default), the data area.
///
/// What is checked, each failure an error naming the file and the key or tensor:
/// - magic, version, counts that cannot fit the file (before anything is allocated for them);
/// - every string and array length against the bytes left (so a count of 2^63 fails at once,
///   with no overflow and no allocation), value types, duplicate keys, `general.alignment` a
///   power of two;
/// - every tensor: 1 to 4 dimensions, each positive, element count without overflow, a type the
///   table knows (`GGMLType`) whose block size divides the first dimension, its byte size rows ×
///   row bytes, its offset aligned and its bytes inside the data area, and no two tensors
///   overlapping; duplicate names.
public final class GGUFFile: @unchecked Sendable {
    /// One tensor of the table.
    public struct Tensor: Sendable, Equatable {
        public let name: String
        /// ggml's `ne`: the fastest-varying dimension first (a [rows, cols] matrix is [cols, rows]).
        public let dims: [Int]
        public let type: GGMLType
        /// Absolute offset of the first byte in the file.
        public let offset: Int
        public let byteCount: Int

        /// Row-major shape, slowest first (what safetensors and numpy call the shape).
        public var shape: [Int] { dims.reversed() }
        public var elementCount: Int { dims.reduce(1, *) }
        /// Elements per row (`ne[0]`).
        public var rowWidth: Int { dims[0] }
        public var rows: Int { elementCount / max(1, dims[0]) }
    }

    public static let magic: [UInt8] = Array("GGUF".utf8)
    public static let defaultAlignment = 32
    /// ggml's GGML_MAX_DIMS.
    public static let maxDims = 4

    public let path: String
    public let file: MappedFile
    public let version: Int
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [Tensor]
    public let alignment: Int
    /// Absolute offset of the data area.
    public let dataOffset: Int
    private let keyIndex: [String: Int]
    private let tensorIndex: [String: Int]

    /// Whether `path` starts with the GGUF magic (what `ModelFormat.detect` asks).
    public static func isGGUF(path: String) -> Bool {
        guard let f = try? MappedFile(path: path), f.count >= 4 else { return false }
        return withExtendedLifetime(f) { Array(f.bytes[0..<4]) == magic }
    }

    public convenience init(path: String) throws(FormatError) {
        try self.init(file: try MappedFile(path: path))
    }

    public init(file: MappedFile) throws(FormatError) {
        self.file = file
        path = file.path
        var r = Reader(bytes: file.bytes, path: file.path)
        guard file.count >= 24 else { throw r.fail("the file has \(file.count) bytes, shorter than a GGUF header (24)") }
        guard Array(file.bytes[0..<4]) == Self.magic else {
            throw r.fail("no GGUF magic (the first bytes are \(file.bytes[0..<4].map { String(format2: $0) }.joined(separator: " ")))")
        }
        r.pos = 4
        let v = Int(try r.u32("version"))
        guard v == 2 || v == 3 else { throw r.fail("version \(v) is not supported (2 and 3 are)") }
        version = v
        let nTensors = try r.u64("tensor count"), nKV = try r.u64("metadata count")
        // A key is at least 8 (length) + 4 (type) + 1 bytes, a tensor info 8 + 4 + 8 + 4 + 8.
        guard nKV <= UInt64(r.left / 13) else { throw r.fail("metadata count \(nKV) cannot fit in the \(r.left) bytes left") }
        guard nTensors <= UInt64(r.left / 32) else { throw r.fail("tensor count \(nTensors) cannot fit in the \(r.left) bytes left") }

        var meta: [(String, GGUFValue)] = []
        var keys: [String: Int] = [:]
        meta.reserveCapacity(Int(nKV))
        for i in 0..<Int(nKV) {
            let key = try r.string("key of metadata entry \(i)")
            let raw = try r.u32("type of key '\(key)'")
            guard let t = GGUFValueType(rawValue: raw) else { throw r.fail("key '\(key)': unknown value type \(raw)") }
            let value = try r.value(t, key: key, depth: 0)
            guard keys[key] == nil else { throw r.fail("key '\(key)' appears twice") }
            keys[key] = meta.count
            meta.append((key, value))
        }
        metadata = meta
        keyIndex = keys

        var align = Self.defaultAlignment
        if let i = keys["general.alignment"] {
            guard case .u32(let a) = meta[i].1 else { throw r.fail("key 'general.alignment' must be a u32, got \(meta[i].1.type)") }
            guard a > 0, a & (a - 1) == 0 else { throw r.fail("key 'general.alignment' is \(a), not a power of two") }
            align = Int(a)
        }
        alignment = align

        struct Raw { let name: String; let dims: [Int]; let type: GGMLType; let rel: UInt64 }
        var raws: [Raw] = []
        var names: [String: Int] = [:]
        raws.reserveCapacity(Int(nTensors))
        for i in 0..<Int(nTensors) {
            let name = try r.string("name of tensor \(i)")
            let nd = try r.u32("dimension count of tensor '\(name)'")
            guard nd >= 1, nd <= UInt32(Self.maxDims) else {
                throw FormatError.invalidTensor(file: path, tensor: name, message: "\(nd) dimensions (GGUF tensors have 1 to \(Self.maxDims))")
            }
            var dims: [Int] = []
            var count: Int = 1
            for d in 0..<Int(nd) {
                let x = try r.u64("dimension \(d) of tensor '\(name)'")
                guard x > 0, x <= UInt64(Int32.max) else {
                    throw FormatError.invalidTensor(file: path, tensor: name, message: "dimension \(d) is \(x) (must be 1 to \(Int32.max))")
                }
                let (p, o) = count.multipliedReportingOverflow(by: Int(x))
                guard !o, p <= Int(1) << 48 else {
                    throw FormatError.invalidTensor(file: path, tensor: name, message: "element count overflows (dimensions so far \(dims + [Int(x)]))")
                }
                count = p
                dims.append(Int(x))
            }
            let traw = try r.u32("type of tensor '\(name)'")
            guard let type = GGMLType(rawValue: traw) else {
                throw FormatError.invalidTensor(file: path, tensor: name, message: "unknown ggml type id \(traw)")
            }
            let rel = try r.u64("offset of tensor '\(name)'")
            guard names[name] == nil else { throw FormatError.invalidTensor(file: path, tensor: name, message: "the name appears twice in the tensor table") }
            names[name] = raws.count
            raws.append(Raw(name: name, dims: dims, type: type, rel: rel))
        }
        let dataStart = (r.pos + align - 1) / align * align
        guard dataStart <= file.count else { throw r.fail("the tensor table ends at \(r.pos), past the end of the \(file.count)-byte file's data area") }
        dataOffset = dataStart
        let dataSize = UInt64(file.count - dataStart)

        var out: [Tensor] = []
        out.reserveCapacity(raws.count)
        for t in raws {
            guard t.dims[0] % t.type.blockSize == 0 else {
                throw FormatError.invalidTensor(file: path, tensor: t.name, message:
                    "row width \(t.dims[0]) is not a multiple of \(t.type.name)'s block of \(t.type.blockSize)")
            }
            let rowBytes = t.dims[0] / t.type.blockSize * t.type.typeSize
            let rows = t.dims.dropFirst().reduce(1, *)
            let (size, o) = rowBytes.multipliedReportingOverflow(by: rows)
            guard !o else { throw FormatError.invalidTensor(file: path, tensor: t.name, message: "byte size overflows") }
            guard t.rel % UInt64(align) == 0 else {
                throw FormatError.invalidTensor(file: path, tensor: t.name, message: "offset \(t.rel) is not a multiple of the alignment \(align)")
            }
            guard t.rel <= dataSize, UInt64(size) <= dataSize - t.rel else {
                throw FormatError.invalidTensor(file: path, tensor: t.name, message:
                    "\(size) bytes at data offset \(t.rel) run past the end of the data area (\(dataSize) bytes): the file is truncated or the offset is wrong")
            }
            out.append(Tensor(name: t.name, dims: t.dims, type: t.type, offset: dataStart + Int(t.rel), byteCount: size))
        }
        // No two tensors may share bytes: a writer bug or a crafted file would otherwise alias weights.
        let byOffset = out.sorted { $0.offset < $1.offset }
        for (a, b) in zip(byOffset, byOffset.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw FormatError.invalidTensor(file: path, tensor: b.name, message: "its bytes overlap tensor '\(a.name)'")
        }
        tensors = out
        tensorIndex = names
    }

    public func value(_ key: String) -> GGUFValue? { keyIndex[key].map { metadata[$0].value } }
    public func tensor(_ name: String) -> Tensor? { tensorIndex[name].map { tensors[$0] } }

    /// The bytes of a tensor (a view into the mapping).
    public func bytes(of t: Tensor) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[t.offset..<(t.offset + t.byteCount)])
    }

    /// A float tensor (F32, F16, BF16) as a plain view with the given row-major shape (its own by default).
    public func view(_ t: Tensor, name: String? = nil, shape: [Int]? = nil) -> TensorView? {
        let d: DType
        switch t.type {
        case .f32: d = .f32
        case .f16: d = .f16
        case .bf16: d = .bf16
        default: return nil
        }
        return TensorView(info: TensorInfo(name: name ?? t.name, dtype: d, shape: shape ?? t.shape, offset: t.offset, byteCount: t.byteCount), file: file)
    }
}

private extension String {
    init(format2 b: UInt8) {
        let h = String(b, radix: 16)
        self = h.count == 1 ? "0" + h : h
    }
}

/// Bounds-checked little-endian reads over the mapped bytes.
private struct Reader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var pos = 0
    /// Arrays nest at most this deep (llama.cpp writes none nested).
    static let maxDepth = 2

    var left: Int { bytes.count - pos }

    func fail(_ m: String) -> FormatError { .invalidGGUF(file: path, message: m) }

    mutating func take(_ n: Int, _ what: String) throws(FormatError) -> UnsafeRawBufferPointer {
        guard n >= 0, n <= left else {
            throw fail("\(what): needs \(n) bytes at offset \(pos), but only \(left) remain (truncated file?)")
        }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + n)])
    }

    mutating func u32(_ what: String) throws(FormatError) -> UInt32 {
        let b = try take(4, what)
        return UInt32(littleEndian: b.loadUnaligned(as: UInt32.self))
    }

    mutating func u64(_ what: String) throws(FormatError) -> UInt64 {
        let b = try take(8, what)
        return UInt64(littleEndian: b.loadUnaligned(as: UInt64.self))
    }

    mutating func string(_ what: String) throws(FormatError) -> String {
        let n = try u64("length of \(what)")
        guard n <= UInt64(left) else { throw fail("\(what): length \(n) exceeds the \(left) bytes left in the file") }
        let b = try take(Int(n), what)
        guard let s = String(validating: b, as: UTF8.self) else { throw fail("\(what) is not valid UTF-8") }
        return s
    }

    mutating func value(_ t: GGUFValueType, key: String, depth: Int) throws(FormatError) -> GGUFValue {
        let what = "value of key '\(key)'"
        switch t {
        case .u8: return .u8(try take(1, what)[0])
        case .i8: return .i8(Int8(bitPattern: try take(1, what)[0]))
        case .bool:
            let b = try take(1, what)[0]
            guard b <= 1 else { throw fail("key '\(key)': bool byte is \(b), not 0 or 1") }
            return .bool(b == 1)
        case .u16: return .u16(UInt16(littleEndian: try take(2, what).loadUnaligned(as: UInt16.self)))
        case .i16: return .i16(Int16(littleEndian: try take(2, what).loadUnaligned(as: Int16.self)))
        case .u32: return .u32(try u32(what))
        case .i32: return .i32(Int32(bitPattern: try u32(what)))
        case .f32: return .f32(Float(bitPattern: try u32(what)))
        case .u64: return .u64(try u64(what))
        case .i64: return .i64(Int64(bitPattern: try u64(what)))
        case .f64: return .f64(Double(bitPattern: try u64(what)))
        case .string: return .string(try string(what))
        case .array:
            guard depth < Self.maxDepth else { throw fail("key '\(key)': arrays nested deeper than \(Self.maxDepth)") }
            let raw = try u32("element type of key '\(key)'")
            guard let et = GGUFValueType(rawValue: raw) else { throw fail("key '\(key)': unknown array element type \(raw)") }
            let n = try u64("element count of key '\(key)'")
            // Checked before anything is allocated: strings take at least 8 bytes, arrays 12.
            let minSize = et.fixedSize ?? (et == .string ? 8 : 12)
            guard n <= UInt64(left / minSize) else {
                throw fail("key '\(key)': \(n) elements of \(et) cannot fit in the \(left) bytes left")
            }
            var a: [GGUFValue] = []
            a.reserveCapacity(Int(n))
            for _ in 0..<Int(n) { a.append(try value(et, key: key, depth: depth + 1)) }
            return .array(et, a)
        }
    }
}
