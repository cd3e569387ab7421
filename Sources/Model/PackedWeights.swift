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
            let layout = seg.scheme.layout(rows: seg.rows.count, cols: cols)
            let codes = try section(t, seg.section("codes"), bytes: layout.codeBytes)
            let scaleCount = seg.scaleCount(cols: cols)
            let scales = scaleCount > 0 ? try section(t, seg.section("scales"), bytes: scaleCount * 4) : nil
            let zeros = layout.zeroPointCount > 0 ? try section(t, seg.section("zero_points"), bytes: layout.zeroPointCount) : nil
            // Sections start on 64-byte boundaries (and decoded copies are 64-byte aligned), so
            // scales can be read as Float in place.
            SegmentCodec.decode(codes: codes.bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!,
                                scales: scales?.bytes.baseAddress?.assumingMemoryBound(to: Float.self),
                                zeroPoints: zeros?.bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                cols: cols, segment: seg, into: out + seg.rows.lowerBound * cols)
            withExtendedLifetime((codes, scales, zeros)) {}
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
            let codes: UnsafeRawPointer, scales: UnsafePointer<Float>?, zeros: UnsafePointer<UInt8>?
            let codeBytesPerRow: Int, scalesPerRow: Int

            func decode(_ r: Int, into out: UnsafeMutablePointer<Float>) {
                Codec.decode(codes: codes + r * codeBytesPerRow, scales: scales.map { $0 + r * scalesPerRow },
                             zeroPoints: zeros.map { $0 + r * scalesPerRow }, cols: cols, rows: 0..<1, scheme: seg.scheme, into: out)
            }
        }
        let value: Rows?

        init(_ w: PackedWeights) throws {
            let (t, plan) = try w.entry(.embedding, nil, nil)
            guard plan.segments.count == 1, t.sections.values.allSatisfy({ $0.encoding == .raw }) else { value = nil; return }
            let seg = plan.segments[0]
            let layout = seg.scheme.layout(rows: seg.rows.count, cols: plan.cols)
            func raw(_ name: String, _ bytes: Int) throws -> UnsafeRawPointer? {
                guard bytes > 0 else { return nil }
                let d = try w.section(t, seg.section(name), bytes: bytes).bytes
                let s = t.sections[seg.section(name)]!
                w.file.file.dontNeed(offset: s.offset, count: s.length)
                return d.baseAddress
            }
            let scaleCount = seg.scaleCount(cols: plan.cols)
            guard let codes = try raw("codes", layout.codeBytes) else { value = nil; return }
            value = Rows(seg: seg, cols: plan.cols, codes: codes,
                         scales: try raw("scales", scaleCount * 4)?.assumingMemoryBound(to: Float.self),
                         zeros: try raw("zero_points", layout.zeroPointCount)?.assumingMemoryBound(to: UInt8.self),
                         codeBytesPerRow: layout.codeBytesPerRow,
                         // fp8-tensor has one scale for all rows (an embedding is one segment, one block).
                         scalesPerRow: seg.scheme == .fp8Tensor ? 0 : layout.groupsPerRow)
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
