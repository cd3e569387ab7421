import Formats
import Quantize

/// Weights of a packed file, dequantized to FP32 one tensor at a time when the forward pass asks.
/// Every read checks the section checksums, so corruption surfaces as an error naming the tensor.
public final class PackedWeights: WeightProvider, @unchecked Sendable {
    public let file: PackedFile
    public var config: ModelConfig { file.config }
    private var byKey: [Key: (PackedTensor, TensorPlan)] = [:]

    struct Key: Hashable { let role: TensorRole; let layer: Int; let expert: Int }

    public convenience init(path: String) throws {
        try self.init(file: PackedFile(path: path))
    }

    public init(file: PackedFile) throws {
        self.file = file
        let path = file.path
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
            // Every section the codec declares, size-checked; keyed by the name without the segment prefix.
            var parts: [String: SectionData] = [:]
            for spec in seg.sections(cols: cols) {
                parts[String(spec.name.split(separator: ".").last!)] = try section(t, spec.name, bytes: spec.bytes)
            }
            // Sections start on 64-byte boundaries (and decoded copies are 64-byte aligned), so
            // scales can be read as Float in place.
            SegmentCodec.decode(codes: parts["codes"]!.bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!,
                                scales: parts["scales"]?.bytes.baseAddress,
                                zeroPoints: parts["zero_points"]?.bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                cols: cols, segment: seg, into: out + seg.rows.lowerBound * cols,
                                globalScales: parts["global_scales"]?.bytes.baseAddress?.assumingMemoryBound(to: Float.self))
            withExtendedLifetime(parts) {}
        }
    }

    /// A section's bytes, checksum verified: raw sections are read in place from the mapping,
    /// compressed ones decoded into a buffer that lives as long as the returned value.
    private func section(_ t: PackedTensor, _ name: String, bytes expected: Int) throws -> SectionData {
        guard let s = t.sections[name] else {
            throw FormatError.invalidTensor(file: file.path, tensor: t.name, message: "missing section '\(name)'")
        }
        guard s.rawLength == expected else {
            throw FormatError.invalidTensor(file: file.path, tensor: t.name,
                                            message: "section '\(name)' holds \(s.rawLength) bytes, its scheme needs \(expected)")
        }
        let owner = "\(t.name) (\(name))"
        if s.encoding == .raw { return SectionData(try file.stored(s, owner: owner)) }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, s.rawLength), alignment: 64)
        do { try file.read(s, owner: owner, into: UnsafeMutableRawBufferPointer(rebasing: buf[0..<s.rawLength])) } catch {
            buf.deallocate(); throw error
        }
        return SectionData(owning: buf, count: s.rawLength)
    }

    public func embeddingRows(_ ids: UnsafeBufferPointer<Int32>, into out: UnsafeMutablePointer<Float>) throws {
        let h = config.hiddenSize, v = config.vocabSize
        for id in ids where id < 0 || Int(id) >= v {
            throw FormatError.invalidTensor(file: file.path, tensor: "backbone.embeddings.weight", message: "token id \(id) is outside the vocabulary of \(v)")
        }
        // Converters store the embedding raw, so each row is decoded in place from the mapping:
        // a real model's embedding is 131072 × 2688, 1.4 GB as FP32, of which a batch needs a few rows.
        if embeddingRows == nil { embeddingRows = try EmbeddingRows(self) }
        if let rows = embeddingRows!.value {
            for (i, id) in ids.enumerated() { rows.decode(Int(id), into: out + i * h) }
            return
        }
        // Compressed (files from before raw embeddings): decode the whole table once and keep it.
        if embeddingCache == nil {
            let b = FloatBuffer(count: v * h)
            try load(.embedding, layer: nil, expert: nil, into: b.pointer)
            embeddingCache = b
        }
        for (i, id) in ids.enumerated() { (out + i * h).update(from: embeddingCache!.pointer + Int(id) * h, count: h) }
    }
    private var embeddingCache: FloatBuffer?
    private var embeddingRows: EmbeddingRows?

    /// Row access to a one-segment embedding whose sections are all raw; `value` is nil otherwise.
    /// The sections' checksums are verified once, in full, when this is made; the pages hashing
    /// brought in are then dropped from the resident set, so later lookups bring in only their rows.
    struct EmbeddingRows {
        struct Rows {
            let seg: TensorPlan.Segment, cols: Int
            let codes: UnsafeRawPointer, scales: UnsafeRawPointer?, zeros: UnsafePointer<UInt8>?
            let globalScales: UnsafePointer<Float>?
            let codeBytesPerRow: Int, scalesPerRow: Int, scaleBytesPerRow: Int

            func decode(_ r: Int, into out: UnsafeMutablePointer<Float>) {
                Codec.decode(codes: codes + r * codeBytesPerRow, scales: scales.map { $0 + r * scaleBytesPerRow },
                             zeroPoints: zeros.map { $0 + r * scalesPerRow }, cols: cols, rows: 0..<1, scheme: seg.scheme, into: out,
                             globalScales: globalScales)
            }
        }
        let value: Rows?

        init(_ w: PackedWeights) throws {
            let (t, plan) = try w.entry(.embedding, nil, nil)
            guard plan.segments.count == 1, t.sections.values.allSatisfy({ $0.encoding == .raw }) else { value = nil; return }
            let seg = plan.segments[0]
            var parts: [String: UnsafeRawPointer] = [:]
            for spec in seg.sections(cols: plan.cols) where spec.bytes > 0 {
                let d = try w.section(t, spec.name, bytes: spec.bytes).bytes
                let s = t.sections[spec.name]!
                w.file.file.dontNeed(offset: s.offset, count: s.length)
                parts[String(spec.name.split(separator: ".").last!)] = d.baseAddress
            }
            guard let codes = parts["codes"] else { value = nil; return }
            let codec = seg.scheme.codec
            // A block scale (fp8-tensor) is one for all rows: an embedding is one segment, one block.
            let spr = codec.rowBlockScale?.storage == .scales ? 0 : codec.scalesPerRow(cols: plan.cols)
            value = Rows(seg: seg, cols: plan.cols, codes: codes, scales: parts["scales"],
                         zeros: parts["zero_points"]?.assumingMemoryBound(to: UInt8.self),
                         globalScales: parts["global_scales"]?.assumingMemoryBound(to: Float.self),
                         codeBytesPerRow: codec.codeBytesPerRow(cols: plan.cols), scalesPerRow: spr,
                         scaleBytesPerRow: spr * codec.scaleElement.byteSize)
        }
    }
}

/// Bytes of one section: a view into the mapped file, or a decoded copy this object owns.
final class SectionData {
    let bytes: UnsafeRawBufferPointer
    private let owned: UnsafeMutableRawBufferPointer?

    init(_ view: UnsafeRawBufferPointer) { bytes = view; owned = nil }
    init(owning b: UnsafeMutableRawBufferPointer, count: Int) {
        owned = b
        bytes = UnsafeRawBufferPointer(rebasing: b[0..<count])
    }
    deinit { owned?.deallocate() }
}
