import Formats
@testable import Model
import TestSupport

/// Synthetic layers over the shared SplitMix64: the same on every run and machine.
extension SplitMix64 {
    /// Uniform in [-scale, scale).
    mutating func uniform(_ scale: Float = 1) -> Float {
        Float(Double(next() >> 11) / Double(1 << 53) * 2 - 1) * scale
    }

    mutating func values(_ n: Int, scale: Float = 1, offset: Float = 0) -> [Float] {
        (0..<n).map { _ in offset + uniform(scale) }
    }
}

/// A model config from JSON text, as a test would write config.json.
func testConfig(_ json: String) throws -> ModelConfig {
    try ModelConfig(json: try JSONParser.parse(Array(json.utf8)), file: "test config.json")
}

/// Weights held in arrays, keyed by role, layer and expert: lets a test build a synthetic layer
/// and hand the very same numbers to the mixer under test and to a naive reference.
final class InMemoryWeights: WeightProvider, @unchecked Sendable {
    struct Key: Hashable { let role: TensorRole; let layer: Int; let expert: Int }
    let config: ModelConfig
    private(set) var tensors: [Key: [Float]] = [:]

    init(config: ModelConfig) { self.config = config }

    subscript(role: TensorRole, layer: Int?, expert: Int?) -> [Float] {
        get { tensors[Key(role: role, layer: layer ?? -1, expert: expert ?? -1)]! }
        set { tensors[Key(role: role, layer: layer ?? -1, expert: expert ?? -1)] = newValue }
    }

    /// Fills every tensor TensorMap expects for layer `l` with uniform values of `scale`.
    func randomLayer(_ l: Int, rng: inout SplitMix64, scale: Float = 0.3) {
        for t in TensorMap.expectedTensors(of: config, layer: l) {
            self[t.role, l, t.expert] = rng.values(t.shape.reduce(1, *), scale: scale)
        }
    }

    func contains(_ role: TensorRole, layer: Int?, expert: Int?) -> Bool {
        tensors[Key(role: role, layer: layer ?? -1, expert: expert ?? -1)] != nil
    }

    func load(_ role: TensorRole, layer: Int?, expert: Int?, into out: UnsafeMutablePointer<Float>) throws {
        guard let v = tensors[Key(role: role, layer: layer ?? -1, expert: expert ?? -1)] else {
            throw FormatError.missingTensor(file: "in-memory", tensor: role.hubName(layer: layer, expert: expert))
        }
        v.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: v.count) }
    }

    func embeddingRows(_ ids: UnsafeBufferPointer<Int32>, into out: UnsafeMutablePointer<Float>) throws {
        let h = config.hiddenSize, e = self[.embedding, nil, nil]
        for (i, id) in ids.enumerated() {
            for c in 0..<h { out[i * h + c] = e[Int(id) * h + c] }
        }
    }
}
