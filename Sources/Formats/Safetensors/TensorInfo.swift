/// Where one tensor lives in a safetensors file. Offsets are absolute within the file.
public struct TensorInfo: Equatable, Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Byte offset of the first element from the start of the file.
    public var offset: Int
    public var byteCount: Int

    public init(name: String, dtype: DType, shape: [Int], offset: Int, byteCount: Int) {
        self.name = name; self.dtype = dtype; self.shape = shape; self.offset = offset; self.byteCount = byteCount
    }

    public var elementCount: Int { shape.reduce(1, *) }
}
