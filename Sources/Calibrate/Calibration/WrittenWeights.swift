import Formats
import Model
import Quantize

/// Weights for sequential calibration: tensors already quantized into the unfinished output are
/// read back from its sink (`TensorSink.readBack`) and dequantized exactly as a reader of the
/// finished file will see them; the rest come from the source checkpoint. Layer i+1 then
/// calibrates on what quantized layer i outputs.
final class WrittenWeights: WeightProvider, @unchecked Sendable {
    let base: CheckpointWeights
    let writer: TensorSink
    private var written: [Key: (name: String, plan: TensorPlan)] = [:]
    var config: ModelConfig { base.config }

    struct Key: Hashable { let role: TensorRole; let layer: Int; let expert: Int }

    init(base: CheckpointWeights, writer: TensorSink) {
        self.base = base
        self.writer = writer
    }

    /// Serve this tensor from the file from now on: quantized ones, and any an encoder rewrote
    /// (whose sections are then raw). Untouched high-precision tensors are identical to the source.
    func record(_ t: BoundTensor, plan: TensorPlan, rewritten: Bool) throws {
        guard plan.isQuantized || rewritten else { return }
        written[Key(role: t.role, layer: t.layer ?? -1, expert: t.expert ?? -1)] = (t.name, plan)
    }

    func contains(_ role: TensorRole, layer: Int?, expert: Int?) -> Bool { base.contains(role, layer: layer, expert: expert) }

    func load(_ role: TensorRole, layer: Int?, expert: Int?, into out: UnsafeMutablePointer<Float>) throws {
        guard let (name, plan) = written[Key(role: role, layer: layer ?? -1, expert: expert ?? -1)] else {
            return try base.load(role, layer: layer, expert: expert, into: out)
        }
        for seg in plan.segments {
            // The sections the codec declares, copied out 64-byte aligned so scales read in place.
            var parts: [String: UnsafeMutableRawBufferPointer] = [:]
            defer { for p in parts.values { p.deallocate() } }
            var fromSource = false
            for spec in seg.sections(cols: plan.cols) {
                guard let b = try writer.readBack(tensor: name, section: spec.name) else {
                    // Stored compressed: a high-precision segment whose values are the source's.
                    fromSource = true
                    break
                }
                let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, b.count), alignment: 64)
                b.withUnsafeBytes { buf.baseAddress!.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(buf.baseAddress!), byteCount: b.count) }
                parts[String(spec.name.split(separator: ".").last!)] = buf
            }
            if fromSource {
                let full = FloatBuffer(count: plan.rows * plan.cols)
                try base.load(role, layer: layer, expert: expert, into: full.pointer)
                (out + seg.rows.lowerBound * plan.cols).update(from: full.pointer + seg.rows.lowerBound * plan.cols,
                                                               count: seg.rows.count * plan.cols)
                continue
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
}
