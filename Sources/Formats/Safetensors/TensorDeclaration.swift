/// A tensor a writer will produce: its name, element type and shape, before any of its bytes exist.
public struct TensorDeclaration: Equatable, Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]

    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name; self.dtype = dtype; self.shape = shape
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { elementCount * dtype.byteSize }

    /// The byte size, or nil if the shape is negative or its size overflows.
    var checkedByteCount: Int? {
        var n = dtype.byteSize
        for d in shape {
            guard d >= 0 else { return nil }
            let (m, o) = n.multipliedReportingOverflow(by: d)
            guard !o else { return nil }
            n = m
        }
        return n
    }
}
