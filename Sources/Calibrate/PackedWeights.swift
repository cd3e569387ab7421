import Formats
import Quantize

/// Weights of a packed file, dequantized to FP32 one tensor at a time when the forward pass asks.
/// Every read checks the section checksums, so corruption surfaces as an error naming the tensor.
public final class PackedWeights: WeightProvider, @unchecked Sendable {
    public let file: PackedFile
    public var config: ModelConfig { file.config }
    private var byKey: [Key: (PackedTensor, TensorPlan)] = [:]

    struct Key: Hashable { let role: TensorRole; let layer: Int; let expert: Int }

    public init(path: String) throws {
        file = try PackedFile(path: path)
        for t in file.tensors {
            byKey[Key(role: t.role, layer: t.layer ?? -1, expert: t.expert ?? -1)] = (t, try TensorPlan(packed: t, file: path))
        }
        if byKey[Key(role: .lmHead, layer: -1, expert: -1)] == nil, config.tieWordEmbeddings,
           let e = byKey[Key(role: .embedding, layer: -1, expert: -1)] {
            byKey[Key(role: .lmHead, layer: -1, expert: -1)] = e
        }
    }

    public func contains(_ role: TensorRole, layer: Int?, expert: Int?) -> Bool {
        byKey[Key(role: role, layer: layer ?? -1, expert: expert ?? -1)] != nil
    }

    private func entry(_ role: TensorRole, _ layer: Int?, _ expert: Int?) throws -> (PackedTensor, TensorPlan) {
        guard let e = byKey[Key(role: role, layer: layer ?? -1, expert: expert ?? -1)] else {
            throw FormatError.missingTensor(file: file.path, tensor: role.hubName(layer: layer, expert: expert))
        }
        return e
    }

    public func load(_ role: TensorRole, layer: Int?, expert: Int?, into out: UnsafeMutablePointer<Float>) throws {
        let (t, plan) = try entry(role, layer, expert)
        let cols = plan.cols
        for seg in plan.segments {
            let codes = try section(t, seg.section("codes"))
            let scales = try t.sections[seg.section("scales")].map { try file.bytes($0, owner: "\(t.name) (\(seg.section("scales")))") }
            let zeros = try t.sections[seg.section("zero_points")].map { try file.bytes($0, owner: "\(t.name) (\(seg.section("zero_points")))") }
            let layout = seg.scheme.layout(rows: seg.rows.count, cols: cols)
            guard codes.count == layout.codeBytes,
                  (scales?.count ?? 0) == seg.scaleCount(cols: cols) * 4,
                  (zeros?.count ?? 0) == layout.zeroPointCount else {
                throw FormatError.invalidTensor(file: file.path, tensor: t.name, message: "segment '\(seg.name)' sections do not match its scheme \(seg.scheme) and shape")
            }
            codes.withUnsafeBytes { cb in
                let sp = scales.map { s in s.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }
                sp.withOptionalPointer { spp in
                    zeros.withOptionalPointer { zpp in
                        SegmentCodec.decode(codes: cb.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!, scales: spp, zeroPoints: zpp,
                                            cols: cols, segment: seg, into: out + seg.rows.lowerBound * cols)
                    }
                }
            }
        }
    }

    private func section(_ t: PackedTensor, _ name: String) throws -> [UInt8] {
        guard let s = t.sections[name] else {
            throw FormatError.invalidTensor(file: file.path, tensor: t.name, message: "missing section '\(name)'")
        }
        return try file.bytes(s, owner: "\(t.name) (\(name))")
    }

    public func embeddingRows(_ ids: UnsafeBufferPointer<Int32>, into out: UnsafeMutablePointer<Float>) throws {
        // The embedding is kept in high precision; decoding it whole per batch is simple but costs
        // vocab × hidden floats, so decode once and keep it.
        let h = config.hiddenSize, v = config.vocabSize
        if embeddingCache == nil {
            let b = FloatBuffer(count: v * h)
            try load(.embedding, layer: nil, expert: nil, into: b.pointer)
            embeddingCache = b
        }
        for (i, id) in ids.enumerated() {
            guard id >= 0, Int(id) < v else {
                throw FormatError.invalidTensor(file: file.path, tensor: "backbone.embeddings.weight", message: "token id \(id) is outside the vocabulary of \(v)")
            }
            (out + i * h).update(from: embeddingCache!.pointer + Int(id) * h, count: h)
        }
    }
    private var embeddingCache: FloatBuffer?
}

extension Optional where Wrapped == [Float] {
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let a): return a.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: return body(nil)
        }
    }
}

extension Optional where Wrapped == [UInt8] {
    func withOptionalPointer<R>(_ body: (UnsafePointer<UInt8>?) -> R) -> R {
        switch self {
        case .some(let a): return a.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: return body(nil)
        }
    }
}
