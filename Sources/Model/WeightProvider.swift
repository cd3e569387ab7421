import Formats

/// Where the forward pass gets FP32 weights from: a Hugging Face checkpoint, a packed quantized
/// file (dequantized on load), or either with a transform applied (fake quantization).
///
/// Weights are asked for one tensor at a time, when the layer that uses them runs, so at most one
/// layer's weights (one expert's, for MoE) are resident in FP32.
public protocol WeightProvider: AnyObject, Sendable {
    var config: ModelConfig { get }
    func contains(_ role: TensorRole, layer: Int?, expert: Int?) -> Bool
    /// Writes the tensor's values as Float32 into `out`, which holds its element count.
    func load(_ role: TensorRole, layer: Int?, expert: Int?, into out: UnsafeMutablePointer<Float>) throws
    /// Writes rows `ids` of the [vocab, hidden] embedding into `out` ([ids.count, hidden]).
    /// Only the rows asked for are converted; a `CheckpointWeights` transform is not applied to them.
    func embeddingRows(_ ids: UnsafeBufferPointer<Int32>, into out: UnsafeMutablePointer<Float>) throws
}

extension WeightProvider {
    /// Loads into a buffer owned by the caller, sized here.
    public func load(_ role: TensorRole, layer: Int? = nil, expert: Int? = nil, count: Int, into b: FloatBuffer) throws {
        b.resize(count)
        try load(role, layer: layer, expert: expert, into: b.pointer)
    }
}

/// Weights read straight from a checkpoint's mapped safetensors, converted on load. An optional
/// transform rewrites each linear weight after conversion (used to evaluate fake-quantized models).
public final class CheckpointWeights: WeightProvider, @unchecked Sendable {
    public let map: TensorMap
    public var config: ModelConfig { map.config }
    public typealias Transform = @Sendable (_ tensor: BoundTensor, _ values: UnsafeMutablePointer<Float>) throws -> Void
    private let transform: Transform?

    public init(map: TensorMap, transform: Transform? = nil) {
        self.map = map
        self.transform = transform
    }

    public convenience init(path: String, transform: Transform? = nil) throws {
        self.init(map: try TensorMap(checkpoint: try Checkpoint(path: path)), transform: transform)
    }

    public func contains(_ role: TensorRole, layer: Int?, expert: Int?) -> Bool {
        map.tensor(role, layer: layer, expert: expert) != nil
    }

    public func load(_ role: TensorRole, layer: Int?, expert: Int?, into out: UnsafeMutablePointer<Float>) throws {
        guard let t = map.tensor(role, layer: layer, expert: expert) else {
            throw FormatError.missingTensor(file: map.config.modelType, tensor: role.hubName(layer: layer, expert: expert))
        }
        try t.data.readFloats(into: out)
        // The mapped source pages were read once per pass; without this, resident memory grows
        // toward the whole checkpoint as layers stream through.
        t.data.dontNeed()
        if let f = transform { try f(t, out) }
    }

    public func embeddingRows(_ ids: UnsafeBufferPointer<Int32>, into out: UnsafeMutablePointer<Float>) throws {
        guard let t = map.tensor(.embedding) else {
            throw FormatError.missingTensor(file: map.config.modelType, tensor: "backbone.embeddings.weight")
        }
        let h = map.config.hiddenSize, v = map.config.vocabSize
        for (i, id) in ids.enumerated() {
            guard id >= 0, Int(id) < v else {
                throw FormatError.invalidTensor(file: t.data.path, tensor: t.name, message: "token id \(id) is outside the vocabulary of \(v)")
            }
            // One row each: plain storage converts it in place, encoded storage decodes just it.
            try t.data.readRows(Int(id)..<(Int(id) + 1), into: out + i * h)
        }
    }
}
