#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a safetensors file with bounded memory, atomically.
///
/// Two ways to use it:
/// - **Declared** (`init(path:tensors:metadata:)`): every tensor's name, dtype and shape is known
///   up front, so the header — and with it every offset — is written first and data streams
///   straight behind it, in declaration order, in as many chunks as the caller likes. Each byte is
///   written once; this is the path for converting large checkpoints.
/// - **Appended** (`init(path:metadata:)` then `append`/`begin`+`write`): tensors are added as they
///   are produced. Their data is staged in a second temporary file, and `finish()` writes the
///   header and copies the data behind it in 4 MB pieces, since the header's size is not known
///   until the last tensor is in. Data is written twice; prefer declared mode for large outputs.
///
/// The data section starts on an 8-byte boundary: the header JSON is padded with spaces, as the
/// reference implementation does, so readers may map the data section with aligned types.
/// Nothing appears at `path` until `finish()` has fsynced and renamed the file into place; on any
/// error, on `abandon()`, or when the writer is dropped unfinished, the temporary files are removed.
public final class SafetensorsWriter {
    public let path: String
    public let metadata: [String: String]
    /// Tensors in data order, as declared or appended so far.
    public private(set) var declarations: [TensorDeclaration] = []

    private let out: AtomicFile
    /// Set in append mode: data is staged here until the header can be written.
    private let staging: AtomicFile?
    private var names: Set<String> = []
    private var offsets: [Int] = []      // data-section offset of each tensor
    private var dataStart: Int           // file offset of the data section (0 in the staging file)
    private var current = 0              // tensor being filled
    private var filled = 0               // bytes of it written so far
    private var dataEnd = 0              // data-section bytes declared so far
    private var state = State.writing

    private enum State { case writing, finished, failed }

    /// Declared mode: the header is written now; data must follow in declaration order.
    public init(path: String, tensors: [TensorDeclaration], metadata: [String: String] = [:]) throws(FormatError) {
        self.path = path
        self.metadata = metadata
        out = try AtomicFile(destination: path)
        staging = nil
        dataStart = 0
        do throws(FormatError) {
            for t in tensors { try add(t) }
            let header = Self.header(declarations, offsets: offsets, metadata: metadata)
            try withBytes(header) { (b) throws(FormatError) in try out.write(b, at: 0) }
            dataStart = header.count
            skipCompleted()
        } catch {
            fail()
            throw error
        }
    }

    /// Append mode: tensors are added one at a time with `append` or `begin` + `write`.
    public init(path: String, metadata: [String: String] = [:]) throws(FormatError) {
        self.path = path
        self.metadata = metadata
        out = try AtomicFile(destination: path)
        staging = try AtomicFile(destination: path, tag: "data")
        dataStart = 0
    }

    deinit { if state == .writing { fail() } }

    // MARK: Adding data

    /// Writes the next chunk of tensor `name`. Chunks of one tensor follow each other; tensors
    /// follow their declaration order.
    public func write(_ name: String, bytes: UnsafeRawBufferPointer) throws(FormatError) {
        try guarded { () throws(FormatError) in
            // Zero-byte tensors are complete as declared; writing "nothing" to one is harmless.
            if bytes.count == 0 && names.contains(name) { return }
            let n = try expect(name, bytes.count)
            try target.write(bytes, at: dataStart + offsets[current] + filled)
            advance(n)
        }
    }

    public func write(_ name: String, bytes: [UInt8]) throws(FormatError) {
        try withBytes(bytes) { (b) throws(FormatError) in try write(name, bytes: b) }
    }

    /// Leaves `count` bytes of tensor `name` as zeros without writing them (a hole in the file).
    public func writeZeros(_ name: String, count: Int) throws(FormatError) {
        try guarded { () throws(FormatError) in advance(try expect(name, count)) }
    }

    /// Append mode: declares the next tensor; its bytes follow through `write`.
    public func begin(_ tensor: TensorDeclaration) throws(FormatError) {
        try guarded { () throws(FormatError) in
            guard staging != nil else {
                throw FormatError.invalidTensor(file: path, tensor: tensor.name, message: "cannot add a tensor to a writer whose tensors were declared up front")
            }
            if current < declarations.count {
                throw incomplete(current)
            }
            try add(tensor)
            skipCompleted()
        }
    }

    /// Append mode: adds a whole tensor.
    public func append(_ name: String, dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer) throws(FormatError) {
        try begin(TensorDeclaration(name: name, dtype: dtype, shape: shape))
        try write(name, bytes: bytes)
    }

    public func append(_ name: String, dtype: DType, shape: [Int], bytes: [UInt8]) throws(FormatError) {
        try withBytes(bytes) { (b) throws(FormatError) in try append(name, dtype: dtype, shape: shape, bytes: b) }
    }

    // MARK: Finishing

    /// Checks every tensor is complete, then makes the file durable and moves it into place.
    public func finish() throws(FormatError) {
        try guarded { () throws(FormatError) in
            if current < declarations.count { throw incomplete(current) }
            if let staging {
                let header = Self.header(declarations, offsets: offsets, metadata: metadata)
                try withBytes(header) { (b) throws(FormatError) in try out.write(b, at: 0) }
                try out.copy(from: staging.fd, offset: 0, count: dataEnd, to: header.count)
                dataStart = header.count
                staging.discard()
            }
            // Trailing zero tensors were skipped, not written: give the file its full length.
            try out.setSize(dataStart + dataEnd)
            try out.commit()
            state = .finished
        }
    }

    /// Drops everything written so far; nothing appears at `path`.
    public func abandon() {
        guard state == .writing else { return }
        fail()
    }

    // MARK: Internals

    private var target: AtomicFile { staging ?? out }

    private func guarded(_ body: () throws(FormatError) -> Void) throws(FormatError) {
        guard state == .writing else {
            throw FormatError.io(file: path, message: state == .finished ? "the file is already finished" : "an earlier error abandoned this file")
        }
        do throws(FormatError) { try body() } catch {
            fail()
            throw error
        }
    }

    private func fail() {
        state = .failed
        out.discard()
        staging?.discard()
    }

    private func add(_ t: TensorDeclaration) throws(FormatError) {
        func bad(_ m: String) -> FormatError { .invalidTensor(file: path, tensor: t.name, message: m) }
        guard t.name != "__metadata__" else { throw bad("'__metadata__' is reserved for the metadata map") }
        guard let size = t.checkedByteCount else { throw bad("shape \(t.shape) is negative or too large") }
        guard names.insert(t.name).inserted else { throw bad("declared more than once") }
        declarations.append(t)
        offsets.append(dataEnd)
        dataEnd += size
    }

    /// Checks a chunk belongs to the tensor being filled and fits in it; returns its size.
    private func expect(_ name: String, _ n: Int) throws(FormatError) -> Int {
        guard current < declarations.count else {
            throw FormatError.invalidTensor(file: path, tensor: name, message: names.contains(name)
                ? "all of its bytes were already written" : "was never declared")
        }
        let t = declarations[current]
        guard t.name == name else {
            if filled > 0 { throw incomplete(current) }
            throw FormatError.invalidTensor(file: path, tensor: name, message: names.contains(name)
                ? "written out of order: the next tensor in the file is '\(t.name)'" : "was never declared")
        }
        let room = t.byteCount - filled
        guard n <= room else {
            throw FormatError.invalidTensor(file: path, tensor: name, message: "got \(filled + n) bytes but shape \(t.shape) of \(t.dtype.rawValue) holds \(t.byteCount)")
        }
        return n
    }

    private func advance(_ n: Int) {
        filled += n
        skipCompleted()
    }

    /// Moves past the tensor just completed and any zero-byte tensors after it.
    private func skipCompleted() {
        while current < declarations.count && filled == declarations[current].byteCount {
            current += 1
            filled = 0
        }
    }

    private func incomplete(_ i: Int) -> FormatError {
        let t = declarations[i]
        return .invalidTensor(file: path, tensor: t.name, message: "only \(filled) of its \(t.byteCount) bytes were written")
    }

    /// The length prefix and JSON header, padded with spaces so the data section starts 8-aligned.
    static func header(_ tensors: [TensorDeclaration], offsets: [Int], metadata: [String: String]) -> [UInt8] {
        var root = JSONObject()
        if !metadata.isEmpty {
            var m = JSONObject()
            for k in metadata.keys.sorted() { m[k] = .string(metadata[k]!) }
            root["__metadata__"] = .object(m)
        }
        for (t, b) in zip(tensors, offsets) {
            root[t.name] = ["dtype": .string(t.dtype.rawValue), "shape": .array(t.shape.map { .int($0) }),
                            "data_offsets": [.int(b), .int(b + t.byteCount)]]
        }
        var json = JSONWriter.bytes(.object(root))
        json += repeatElement(0x20, count: (8 - json.count % 8) % 8)
        var out = [UInt8](repeating: 0, count: 8)
        let n = UInt64(json.count).littleEndian
        withUnsafeBytes(of: n) { for i in 0..<8 { out[i] = $0[i] } }
        return out + json
    }
}

extension SafetensorsWriter {
    /// Writes small in-memory tensors in one call (tests, metadata files, goldens).
    public static func write(to path: String, tensors: [(TensorDeclaration, [UInt8])],
                             metadata: [String: String] = [:]) throws(FormatError) {
        let w = try SafetensorsWriter(path: path, tensors: tensors.map(\.0), metadata: metadata)
        for (t, b) in tensors { try w.write(t.name, bytes: b) }
        try w.finish()
    }
}

/// `Array.withUnsafeBytes` only rethrows untyped errors; the buffer-pointer form keeps ours typed.
func withBytes<R>(_ a: [UInt8], _ body: (UnsafeRawBufferPointer) throws(FormatError) -> R) throws(FormatError) -> R {
    try a.withUnsafeBufferPointer { (p) throws(FormatError) in try body(UnsafeRawBufferPointer(p)) }
}
