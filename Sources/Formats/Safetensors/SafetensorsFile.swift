/// A safetensors file, mapped and validated.
///
/// Layout: u64 little-endian header length N, N bytes of JSON header, then the data section.
/// The header maps names to `{dtype, shape, data_offsets: [begin, end]}` relative to the data
/// section, plus an optional `__metadata__` string map. Validation is as strict as the reference
/// implementation: every byte of the data section belongs to exactly one tensor, in order.
public final class SafetensorsFile: @unchecked Sendable {
    /// The reference implementation refuses headers above 100 MB; a 6,000-tensor checkpoint needs ~1 MB.
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    public let file: MappedFile
    /// Tensors in data order.
    public let tensors: [TensorInfo]
    public let metadata: [String: String]
    public let dataOffset: Int
    private let byName: [String: Int]

    public convenience init(path: String) throws(FormatError) {
        try self.init(file: try MappedFile(path: path))
    }

    public init(file: MappedFile) throws(FormatError) {
        self.file = file
        self.path = file.path
        let bytes = file.bytes
        guard bytes.count >= 8 else {
            throw FormatError.invalidHeader(file: path, message: "file is \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        let n64 = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard n64 <= UInt64(Self.maxHeaderBytes) else {
            throw FormatError.invalidHeader(file: path, message: "header length \(n64) exceeds the \(Self.maxHeaderBytes)-byte limit")
        }
        let n = Int(n64)
        guard n <= bytes.count - 8 else {
            throw FormatError.invalidHeader(file: path, message: "header length \(n) runs past the end of the \(bytes.count)-byte file (truncated?)")
        }
        guard n >= 2 else { throw FormatError.invalidHeader(file: path, message: "header length \(n) is too small for a JSON object") }
        let json: JSONValue
        do {
            json = try JSONParser.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + n)]))
        } catch {
            throw Self.describe(error, file: path)
        }
        guard let root = json.objectValue else {
            throw FormatError.invalidHeader(file: path, message: "header is not a JSON object")
        }
        dataOffset = 8 + n
        let dataCount = bytes.count - dataOffset
        var meta: [String: String] = [:]
        var list: [(begin: Int, info: TensorInfo)] = []
        list.reserveCapacity(root.count)
        for (name, value) in root {
            if name == "__metadata__" {
                guard let m = value.objectValue else {
                    throw FormatError.invalidHeader(file: path, message: "__metadata__ is not an object")
                }
                for (k, v) in m {
                    guard let s = v.stringValue else {
                        throw FormatError.invalidHeader(file: path, message: "__metadata__ value for '\(k)' is not a string")
                    }
                    meta[k] = s
                }
                continue
            }
            list.append(try Self.parseEntry(name: name, value: value, file: path, dataOffset: dataOffset))
        }
        list.sort { $0.begin < $1.begin || ($0.begin == $1.begin && $0.info.byteCount < $1.info.byteCount) }
        var expected = 0
        var previous: String?
        for (begin, info) in list {
            if begin < expected {
                throw FormatError.invalidTensor(file: path, tensor: info.name, message: "data_offsets overlap tensor '\(previous ?? "")' (this one begins at \(begin), that one ends at \(expected))")
            }
            if begin > expected {
                let after = previous.map { "after tensor '\($0)' (which ends at \(expected))" } ?? "at the start of the data section"
                throw FormatError.invalidTensor(file: path, tensor: info.name, message: "data_offsets begin at \(begin), leaving a hole of \(begin - expected) bytes \(after)")
            }
            previous = info.name
            expected = begin + info.byteCount
            if expected > dataCount {
                throw FormatError.invalidTensor(file: path, tensor: info.name, message: "data_offsets end at \(expected), past the end of the \(dataCount)-byte data section (truncated file?)")
            }
        }
        if expected != dataCount {
            let extra = dataCount - expected
            if let last = list.last {
                throw FormatError.invalidTensor(file: path, tensor: last.info.name, message: "data ends at \(expected), but the data section has \(extra) more bytes after it that belong to no tensor")
            }
            throw FormatError.invalidHeader(file: path, message: "the header declares no tensors but the data section has \(extra) bytes")
        }
        tensors = list.map(\.info)
        metadata = meta
        var idx: [String: Int] = [:]
        idx.reserveCapacity(tensors.count)
        for (i, t) in tensors.enumerated() { idx[t.name] = i }
        byName = idx
    }

    /// Turns a JSON error into one that names the tensor whose entry is broken, when there is one:
    /// the parser reports the path down to the failure, and a duplicate top-level key is a tensor
    /// declared twice.
    private static func describe(_ parseError: JSONParseError, file: String) -> FormatError {
        var e = parseError
        e.offset += 8    // from the start of the file, not of the header, so `xxd` finds it
        if let first = e.path.first, first != "__metadata__" {
            return .invalidTensor(file: file, tensor: first, message: "header entry is not valid JSON: \(e)")
        }
        if e.path.isEmpty, let dup = e.duplicateKey {
            return .invalidTensor(file: file, tensor: dup, message: "declared more than once in the header (byte \(e.offset))")
        }
        return .invalidHeader(file: file, message: "header is not valid JSON: \(e)")
    }

    private static func parseEntry(name: String, value: JSONValue, file: String, dataOffset: Int) throws(FormatError) -> (begin: Int, info: TensorInfo) {
        func bad(_ m: String) -> FormatError { .invalidTensor(file: file, tensor: name, message: m) }
        guard let o = value.objectValue else { throw bad("header entry is not an object") }
        guard let dv = o["dtype"] else { throw bad("missing field 'dtype'") }
        guard let ds = dv.stringValue else { throw bad("field 'dtype' is not a string") }
        guard let dtype = DType(rawValue: ds) else { throw bad("unknown dtype '\(ds)'") }
        guard let sv = o["shape"] else { throw bad("missing field 'shape'") }
        guard let sa = sv.arrayValue else { throw bad("field 'shape' is not an array") }
        var shape: [Int] = []
        var elements = 1
        for d in sa {
            guard let v = d.intValue, v >= 0 else { throw bad("shape \(sv) has an entry that is not a non-negative integer") }
            shape.append(v)
            let (m, o) = elements.multipliedReportingOverflow(by: v)
            guard !o else { throw bad("shape \(shape) overflows") }
            elements = m
        }
        guard let ov = o["data_offsets"] else { throw bad("missing field 'data_offsets'") }
        guard let oa = ov.arrayValue, oa.count == 2, let b = oa[0].intValue, let e = oa[1].intValue else {
            throw bad("field 'data_offsets' is not a pair of integers")
        }
        guard b >= 0, e >= b else { throw bad("data_offsets [\(b), \(e)] are not increasing") }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, bytes == e - b else {
            throw bad("data_offsets [\(b), \(e)] hold \(e - b) bytes but shape \(shape) of \(dtype.rawValue) needs \(overflow ? "more than Int.max" : String(bytes))")
        }
        return (b, TensorInfo(name: name, dtype: dtype, shape: shape, offset: dataOffset + b, byteCount: bytes))
    }

    public func info(_ name: String) -> TensorInfo? { byName[name].map { tensors[$0] } }

    public func view(_ name: String) -> TensorView? {
        info(name).map { TensorView(info: $0, file: file) }
    }
}
