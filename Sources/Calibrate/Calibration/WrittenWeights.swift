import Formats
import Model
import Quantize

/// Weights for sequential calibration: tensors already quantized into the unfinished packed file
/// are read back and dequantized exactly as a reader of the finished file will see them; the rest
/// come from the source checkpoint. Layer i+1 then calibrates on what quantized layer i outputs.
final class WrittenWeights: WeightProvider, @unchecked Sendable {
    let base: CheckpointWeights
    let writer: PackedWriter
    private var written: [Key: (PackedTensor, TensorPlan)] = [:]
    var config: ModelConfig { base.config }

    struct Key: Hashable { let role: TensorRole; let layer: Int; let expert: Int }

    init(base: CheckpointWeights, writer: PackedWriter) {
        self.base = base
        self.writer = writer
    }

    /// Serve this tensor from the file from now on: quantized ones, and any an encoder rewrote
    /// (whose sections are then raw). Untouched high-precision tensors are identical to the source.
    func record(_ t: BoundTensor, plan: TensorPlan, rewritten: Bool) throws {
        guard plan.isQuantized || rewritten, let p = writer.tensor(t.name) else { return }
        written[Key(role: t.role, layer: t.layer ?? -1, expert: t.expert ?? -1)] = (p, plan)
    }

    func contains(_ role: TensorRole, layer: Int?, expert: Int?) -> Bool { base.contains(role, layer: layer, expert: expert) }

    func load(_ role: TensorRole, layer: Int?, expert: Int?, into out: UnsafeMutablePointer<Float>) throws {
        guard let (t, plan) = written[Key(role: role, layer: layer ?? -1, expert: expert ?? -1)] else {
            return try base.load(role, layer: layer, expert: expert, into: out)
        }
        for seg in plan.segments {
            let codes = try bytes(t, seg.section("codes"))
            let scales = seg.scaleCount(cols: plan.cols) > 0 ? try bytes(t, seg.section("scales")) : nil
            let zeros = seg.scheme.layout(rows: seg.rows.count, cols: plan.cols).zeroPointCount > 0
                ? try bytes(t, seg.section("zero_points")) : nil
            if SegmentCodec.isVerbatim(seg.scheme, source: t.sourceDType) && t.sections[seg.section("codes")]?.encoding != .raw {
                // A compressed high-precision segment of a mixed tensor: its values are the source's.
                let full = FloatBuffer(count: plan.rows * plan.cols)
                try base.load(role, layer: layer, expert: expert, into: full.pointer)
                (out + seg.rows.lowerBound * plan.cols).update(from: full.pointer + seg.rows.lowerBound * plan.cols,
                                                               count: seg.rows.count * plan.cols)
                continue
            }
            let scaleValues: [Float] = scales.map { b in b.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } } ?? []
            codes.withUnsafeBytes { c in
                scaleValues.withUnsafeBufferPointer { sp in
                    (zeros ?? []).withUnsafeBufferPointer { zp in
                        SegmentCodec.decode(codes: c.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!,
                                            scales: sp.isEmpty ? nil : sp.baseAddress, zeroPoints: zp.isEmpty ? nil : zp.baseAddress,
                                            cols: plan.cols, segment: seg, into: out + seg.rows.lowerBound * plan.cols)
                    }
                }
            }
        }
    }

    func embeddingRows(_ ids: UnsafeBufferPointer<Int32>, into out: UnsafeMutablePointer<Float>) throws {
        try base.embeddingRows(ids, into: out)
    }

    private func bytes(_ t: PackedTensor, _ name: String) throws -> [UInt8] {
        guard let s = t.sections[name] else {
            throw FormatError.invalidTensor(file: writer.path, tensor: t.name, message: "missing section '\(name)'")
        }
        if s.encoding != .raw { return [] }
        return try writer.readBack(s)
    }
}
