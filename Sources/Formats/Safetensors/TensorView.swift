/// A tensor's bytes inside a mapped file: a name, a type, a shape and a byte range — no copy.
/// Holding a view keeps its file mapped.
public struct TensorView: @unchecked Sendable {
    public let info: TensorInfo
    public let file: MappedFile

    public init(info: TensorInfo, file: MappedFile) { self.info = info; self.file = file }

    public var name: String { info.name }
    public var dtype: DType { info.dtype }
    public var shape: [Int] { info.shape }
    public var elementCount: Int { info.elementCount }
    public var path: String { file.path }

    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[info.offset..<(info.offset + info.byteCount)])
    }

    /// Slice `k` along the first axis of a stacked tensor (e.g. expert k of `[E, out, in]`),
    /// still without copying.
    public func slice(_ k: Int, name newName: String? = nil) -> TensorView {
        precondition(info.shape.count >= 1 && k >= 0 && k < info.shape[0], "slice \(k) out of range for \(info.shape)")
        let inner = Array(info.shape.dropFirst())
        let n = inner.reduce(1, *) * info.dtype.byteSize
        return TensorView(info: TensorInfo(name: newName ?? "\(info.name)[\(k)]", dtype: info.dtype, shape: inner,
                                           offset: info.offset + k * n, byteCount: n), file: file)
    }

    /// Converts every element to Float32 into `out` (which must hold `elementCount` floats).
    public func readFloats(into out: UnsafeMutablePointer<Float>) throws(FormatError) {
        guard info.dtype.isFloatingPoint else {
            throw FormatError.unsupported(file: file.path, tensor: info.name, message: "dtype \(info.dtype.rawValue) cannot be read as floating-point weights")
        }
        FloatConversion.convert(bytes, dtype: info.dtype, count: info.elementCount, into: out)
    }

    /// Converts to a new Float array. Convenience for small tensors (norms, biases); large weights
    /// should go through `readFloats(into:)` with a reused buffer.
    public func floats() throws(FormatError) -> [Float] {
        let n = elementCount
        var a = [Float](repeating: 0, count: n)
        try a.withUnsafeMutableBufferPointer { (b) throws(FormatError) in
            if let p = b.baseAddress { try readFloats(into: p) }
        }
        return a
    }
}
