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
            if SegmentCodec.isVerbatim(seg.scheme, source: t.sourceDType) && t.sections[seg.section("codes")]?.encoding != .raw {
                // A compressed high-precision segment of a mixed tensor: its values are the source's.
                let full = FloatBuffer(count: plan.rows * plan.cols)
                try base.load(role, layer: layer, expert: expert, into: full.pointer)
                (out + seg.rows.lowerBound * plan.cols).update(from: full.pointer + seg.rows.lowerBound * plan.cols,
                                                               count: seg.rows.count * plan.cols)
                continue
            }
            // The sections the codec declares, copied out 64-byte aligned so scales read in place.
            var parts: [String: UnsafeMutableRawBufferPointer] = [:]
            defer { for p in parts.values { p.deallocate() } }
            for spec in seg.sections(cols: plan.cols) {
                let b = try bytes(t, spec.name)
                let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, b.count), alignment: 64)
                b.withUnsafeBytes { buf.baseAddress!.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(buf.baseAddress!), byteCount: b.count) }
                parts[String(spec.name.split(separator: ".").last!)] = buf
            }
            SegmentCodec.decode(codes: UnsafeRawPointer(parts["codes"]!.baseAddress!), scales: parts["scales"].map { UnsafeRawPointer($0.baseAddress!) },
                                zeroPoints: parts["zero_points"].map { UnsafePointer($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) },
                                cols: plan.cols, segment: seg, into: out + seg.rows.lowerBound * plan.cols,
                                globalScales: parts["global_scales"].map { UnsafePointer($0.baseAddress!.assumingMemoryBound(to: Float.self)) })
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
