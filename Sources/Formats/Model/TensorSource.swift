/// The values of one bound tensor, wherever and however they are stored.
///
/// Two kinds of storage sit behind one interface:
/// - **plain**: floating-point values in a mapped file (BF16, F16, F32 safetensors). The view is
///   exposed so hot paths (the converter's fused round-to-nearest, verbatim copies, the embedding
///   lookup) keep reading the mapped bytes in place, with no copy.
/// - **encoded**: codes plus whatever turns them into values (an FP8 tensor and its
///   `weight_scale`, later GGUF blocks). Rows are decoded on demand, a chunk at a time, so a reader
///   never holds more than the rows it asked for.
///
/// A row is one slice along the first axis (an output channel of a weight); a vector's rows are
/// its elements.
public struct TensorSource: @unchecked Sendable {
    public enum Storage: @unchecked Sendable {
        case plain(TensorView)
        case encoded(any EncodedTensor)
    }

    public let storage: Storage

    public init(_ view: TensorView) { storage = .plain(view) }
    public init(encoded: any EncodedTensor) { storage = .encoded(encoded) }

    /// The mapped view of a plain tensor; nil for encoded storage.
    public var plain: TensorView? {
        if case .plain(let v) = storage { return v }
        return nil
    }

    /// The encoded tensor; nil for plain storage.
    public var encoded: (any EncodedTensor)? {
        if case .encoded(let e) = storage { return e }
        return nil
    }

    public var name: String {
        switch storage { case .plain(let v): return v.name; case .encoded(let e): return e.name }
    }
    /// The logical shape: what the model sees, whatever the codes' own shape.
    public var shape: [Int] {
        switch storage { case .plain(let v): return v.shape; case .encoded(let e): return e.shape }
    }
    public var elementCount: Int { shape.reduce(1, *) }
    /// The file the values are read from, for messages.
    public var path: String {
        switch storage { case .plain(let v): return v.path; case .encoded(let e): return e.path }
    }
    /// The element type of the stored values (plain) or codes (encoded: F8_E4M3 for FP8). A recipe's
    /// `keep` resolves to it; an encoded source never counts as a verbatim copy of a float scheme.
    public var dtype: DType {
        switch storage { case .plain(let v): return v.dtype; case .encoded(let e): return e.codeDType }
    }
    /// Bytes the tensor occupies in its files (codes and scales), what a conversion reads.
    public var byteCount: Int {
        switch storage { case .plain(let v): return v.info.byteCount; case .encoded(let e): return e.byteCount }
    }
    public var rows: Int { shape.first ?? 1 }
    /// Elements per row.
    public var rowWidth: Int { rows == 0 ? 0 : elementCount / rows }
    /// How the tensor is stored, for `inspect` and messages: `BF16`, `F8_E4M3 × weight_scale per row (ModelOpt FP8)`.
    public var storageDescription: String {
        switch storage { case .plain(let v): return v.dtype.rawValue; case .encoded(let e): return e.storageDescription }
    }

    /// Writes rows `rows` as Float32 to `out` (which receives `rows.count × rowWidth` values, row
    /// `rows.lowerBound` first).
    public func readRows(_ rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws(FormatError) {
        let w = rowWidth
        try readElements((rows.lowerBound * w)..<(rows.upperBound * w), into: out)
    }

    /// Elements `range` (in row-major order) as Float32 into `out`. Callers that view the tensor
    /// with another row width than its own (a vector as one row of n) read by element. An encoded
    /// tensor decodes whole rows only: the range must start and end on its row boundaries.
    public func readElements(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) throws(FormatError) {
        guard !range.isEmpty else { return }
        switch storage {
        case .plain(let v):
            guard v.dtype.isFloatingPoint else {
                throw FormatError.unsupported(file: v.path, tensor: v.name, message: "dtype \(v.dtype.rawValue) cannot be read as floating-point weights")
            }
            let es = v.dtype.byteSize
            FloatConversion.convert(UnsafeRawBufferPointer(rebasing: v.bytes[(range.lowerBound * es)..<(range.upperBound * es)]),
                                    dtype: v.dtype, count: range.count, into: out)
        case .encoded(let e):
            let w = rowWidth
            guard w > 0, range.lowerBound % w == 0, range.upperBound % w == 0 else {
                throw FormatError.unsupported(file: e.path, tensor: e.name, message: "elements \(range) do not cover whole rows of \(w)")
            }
            try e.decodeRows((range.lowerBound / w)..<(range.upperBound / w), into: out)
        }
    }

    /// Every element as Float32 into `out` (`elementCount` values).
    public func readFloats(into out: UnsafeMutablePointer<Float>) throws(FormatError) {
        try readRows(0..<rows, into: out)
    }

    /// A new Float array; for small tensors (norms, biases).
    public func floats() throws(FormatError) -> [Float] {
        var a = [Float](repeating: 0, count: elementCount)
        try a.withUnsafeMutableBufferPointer { (b) throws(FormatError) in
            if let p = b.baseAddress { try readFloats(into: p) }
        }
        return a
    }

    /// xxHash64 of the stored bytes (codes, then scales for encoded tensors): the provenance a
    /// packed file records per tensor (docs/FORMAT.md, `source_xxh64`).
    public func contentHash() -> UInt64 {
        switch storage { case .plain(let v): return XXH64.hash(v.bytes); case .encoded(let e): return e.contentHash() }
    }

    /// Lets the kernel drop the tensor's pages from this process's resident set once consumed.
    public func dontNeed() {
        switch storage {
        case .plain(let v): v.file.dontNeed(offset: v.info.offset, count: v.info.byteCount)
        case .encoded(let e): e.dontNeed()
        }
    }

    /// Asks the kernel to start reading the first `bytes` of the tensor.
    public func willNeed(bytes: Int) {
        switch storage {
        case .plain(let v): v.file.willNeed(offset: v.info.offset, count: min(bytes, v.info.byteCount))
        case .encoded(let e): e.willNeed(bytes: bytes)
        }
    }
}

/// Stored codes that decode to a tensor's values: one conforming type per quantized input layout
/// (`ModelOptFP8Tensor`), so the converter, the weight providers and the embedding lookup read any
/// of them through `TensorSource`.
public protocol EncodedTensor: Sendable {
    var name: String { get }
    var shape: [Int] { get }
    var path: String { get }
    /// Element type of the codes.
    var codeDType: DType { get }
    var byteCount: Int { get }
    var storageDescription: String { get }
    /// Decodes rows `rows` into `out`, row `rows.lowerBound` first.
    func decodeRows(_ rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws(FormatError)
    func contentHash() -> UInt64
    func dontNeed()
    func willNeed(bytes: Int)
    /// The codes and scales as a codec can store them unchanged, so converting to the scheme the
    /// source already uses copies codes instead of re-quantizing decoded values; nil when none.
    var scaledCodes: ScaledCodes? { get }
    /// Integer codes our INT4/INT8 codecs store unchanged (a compressed-tensors pack-quantized
    /// weight); nil when none.
    var integerCodes: IntegerCodes? { get }
    /// NVFP4 codes and scales as our `nvfp4` codec stores them (a ModelOpt NVFP4 weight); nil when none.
    var nvfp4Codes: NVFP4Codes? { get }
}

extension EncodedTensor {
    public var scaledCodes: ScaledCodes? { nil }
    public var integerCodes: IntegerCodes? { nil }
    public var nvfp4Codes: NVFP4Codes? { nil }
    public func willNeed(bytes: Int) {}
}

/// NVFP4 as stored: E2M1 codes two a byte (low nibble the even column) [rows, cols/2], an E4M3
/// scale per 16 columns [rows, cols/16] and one Float32 second-level scale; value =
/// e2m1(code) × e4m3(block scale) × globalScale — byte for byte what `nvfp4` writes.
public struct NVFP4Codes: @unchecked Sendable {
    public let codes: UnsafeRawBufferPointer
    public let blockScales: UnsafeRawBufferPointer
    public let cols: Int
    public let globalScale: Float
    public init(codes: UnsafeRawBufferPointer, blockScales: UnsafeRawBufferPointer, cols: Int, globalScale: Float) {
        self.codes = codes; self.blockScales = blockScales; self.cols = cols; self.globalScale = globalScale
    }
}

/// Codes of one byte per element and a Float32 scale per row (a per-tensor scale repeated), with
/// value = decode(code) × scale: what FP8 weight-only checkpoints store. Row r's codes are bytes
/// `r·cols ..< (r+1)·cols` of `codes`.
public struct ScaledCodes: @unchecked Sendable {
    public let codeElement: DType
    public let codes: UnsafeRawBufferPointer
    public let cols: Int
    /// One scale per row (`rowScales.count` == rows).
    public let rowScales: [Float]
    public init(codeElement: DType, codes: UnsafeRawBufferPointer, cols: Int, rowScales: [Float]) {
        self.codeElement = codeElement; self.codes = codes; self.cols = cols; self.rowScales = rowScales
    }
}
