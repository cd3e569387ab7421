/// Decodes `blocks` ggml blocks of a type into Float32 (Quantize's `GGMLDequantize.decode`,
/// handed down so this target need not know the block formats).
public typealias GGMLBlockDecoder = @Sendable (_ type: GGMLType, _ src: UnsafeRawPointer, _ blocks: Int, _ out: UnsafeMutablePointer<Float>) -> Void

/// A Nemotron-H GGUF file opened as a model: the config rebuilt from its metadata, and every
/// tensor mapped back to its role under its checkpoint name (`NemotronHGGUF`) with the writer's
/// transforms undone — `ssm_a` back to A_log (exactly: `GGUFValueTransform.invert`), conv1d,
/// D, dt bias and the grouped norm reshaped, stacked experts sliced per expert (no copy). Float
/// tensors (F32, F16, BF16) stay plain mapped views; block-quantized ones decode rows on demand
/// through `decoder`. Every tensor's dims are checked against what the metadata implies before
/// anything is bound, each mismatch an error naming the GGUF tensor.
public struct GGUFModel: @unchecked Sendable {
    public let file: GGUFFile
    public let config: ModelConfig
    /// The config.json fields the metadata gives (`NemotronHGGUF.configJSON`).
    public let configJSON: JSONObject
    public let map: TensorMap
    /// GGUF tensor names nothing was bound to.
    public let unexpected: [String]

    public init(path: String, decoder: @escaping GGMLBlockDecoder, decodable: Set<GGMLType>,
                allowUnexpected: Bool = false) throws(FormatError) {
        try self.init(file: try GGUFFile(path: path), decoder: decoder, decodable: decodable, allowUnexpected: allowUnexpected)
    }

    public init(file f: GGUFFile, decoder: @escaping GGMLBlockDecoder, decodable: Set<GGMLType>,
                allowUnexpected: Bool = false) throws(FormatError) {
        file = f
        configJSON = try NemotronHGGUF.configJSON(from: f)
        let c = try ModelConfig(json: .object(configJSON), file: f.path)
        config = c
        var bound: [String: TensorSource] = [:]
        var names: [String] = []
        var unknown: [String] = []
        for t in f.tensors {
            guard let r = NemotronHGGUF.role(of: t.name) else { unknown.append(t.name); continue }
            if let l = r.layer, l >= c.layers.count {
                throw FormatError.invalidTensor(file: f.path, tensor: t.name, message: "block \(l) is beyond block_count \(c.layers.count)")
            }
            // What the metadata implies: the placement the writer would choose for the expected shape.
            guard let shape = TensorMap.expectedShape(of: c, role: r.role, layer: r.layer, expert: r.stacked ? 0 : nil) else {
                throw FormatError.invalidTensor(file: f.path, tensor: t.name, message:
                    "block \(r.layer ?? -1) is a \(r.layer.map { c.layers[$0].name } ?? "?") layer, which has no such tensor")
            }
            let sink = SinkTensor(name: t.name, role: r.role, layer: r.layer, expert: 0, shape: shape, scheme: "", segments: [], sourceDType: .f32)
            let want = try NemotronHGGUF.placement(sink, config: c).dims
            guard t.dims == want else {
                throw FormatError.invalidTensor(file: f.path, tensor: t.name, message: "dims \(t.dims) (ggml order), the metadata implies \(want)")
            }
            if r.stacked {
                let e = c.moe!.experts
                for k in 0..<e {
                    let hub = "backbone." + r.role.hubName(layer: r.layer, expert: k)
                    names.append(hub)
                    bound[hub] = try Self.source(f, t, name: "\(t.name)[\(k)]", shape: shape, rowOffset: k * shape[0], decoder: decoder, decodable: decodable)
                }
                continue
            }
            let hub = (r.role == .lmHead ? "" : "backbone.") + r.role.hubName(layer: r.layer, expert: nil)
            names.append(hub)
            if let tr = r.transform {
                guard t.type == .f32 else {
                    throw FormatError.invalidTensor(file: f.path, tensor: t.name, message: "is \(t.type.name); a rewritten tensor (\(tr.rawValue)) must be f32")
                }
                let stored = f.bytes(of: t)
                var values = [Float](repeating: 0, count: t.elementCount)
                for i in values.indices {
                    let y = Float(bitPattern: UInt32(littleEndian: stored.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                    guard let x = tr.invert(y) else {
                        throw FormatError.invalidTensor(file: f.path, tensor: t.name, message: "element \(i) is \(y), which no A_log gives (A = −exp(A_log) < 0)")
                    }
                    values[i] = x
                }
                let bytes = values.withUnsafeBytes { Array($0) }
                let mem = MappedFile(path: f.path, contents: bytes)
                bound[hub] = TensorSource(TensorView(info: TensorInfo(name: t.name, dtype: .f32, shape: shape, offset: 0, byteCount: bytes.count), file: mem))
                continue
            }
            // Vectors and conv kernels are reshaped views; only matrices may be block-quantized.
            let viewShape = r.role == .mambaConvWeight ? [shape[0], shape[2]] : shape
            if t.type.isQuantized && shape.count != 2 {
                throw FormatError.invalidTensor(file: f.path, tensor: t.name, message: "is \(t.type.name); only matrices are read block-quantized")
            }
            let src = try Self.source(f, t, name: t.name, shape: viewShape, rowOffset: 0, decoder: decoder, decodable: decodable)
            if let heads = try NemotronHGGUF.placement(sink, config: c).permutedHeads {
                bound[hub] = TensorSource(encoded: PermutedRowsTensor(inner: src, permutation: GGUFRowPermutation(rows: shape[0], heads: heads)))
            } else {
                bound[hub] = src
            }
        }
        if !allowUnexpected && !unknown.isEmpty {
            throw FormatError.modelMismatch(file: f.path, message: "\(unknown.count) GGUF tensor(s) a Nemotron-H model does not have: "
                + unknown.prefix(20).joined(separator: ", ") + (unknown.count > 20 ? ", …" : ""))
        }
        unexpected = unknown
        map = try TensorMap(config: c, source: f.path, names: names, allowUnexpected: allowUnexpected, prebound: bound, view: { _ in nil })
    }

    /// Rows `rowOffset ..< rowOffset + shape[0]` of tensor `t` as a source of `shape`.
    static func source(_ f: GGUFFile, _ t: GGUFFile.Tensor, name: String, shape: [Int], rowOffset: Int,
                       decoder: @escaping GGMLBlockDecoder, decodable: Set<GGMLType>) throws(FormatError) -> TensorSource {
        let rows = shape[0], cols = shape.dropFirst().reduce(1, *)
        let rowBytes = t.type.rowBytes(cols: cols)!
        let offset = t.offset + rowOffset * rowBytes, count = rows * rowBytes
        if let v = f.view(t, name: name, shape: shape) {
            return TensorSource(TensorView(info: TensorInfo(name: name, dtype: v.dtype, shape: shape, offset: offset, byteCount: count), file: f.file))
        }
        guard decodable.contains(t.type) else {
            throw FormatError.unsupported(file: f.path, tensor: t.name, message: "ggml type \(t.type.name) is not one this reader decodes")
        }
        return TensorSource(encoded: GGUFBlockTensor(name: name, shape: shape, file: f.file, type: t.type, offset: offset,
                                                     byteCount: count, decoder: decoder))
    }
}

/// Rows of ggml blocks in a mapped GGUF file, decoded on demand.
public struct GGUFBlockTensor: EncodedTensor, @unchecked Sendable {
    public let name: String
    public let shape: [Int]
    public let file: MappedFile
    public let type: GGMLType
    public let offset: Int
    public let byteCount: Int
    let decoder: GGMLBlockDecoder

    public var path: String { file.path }
    public var codeDType: DType { .u8 }
    public var storageDescription: String { "\(type.name.uppercased()) (ggml blocks)" }
    var cols: Int { shape.dropFirst().reduce(1, *) }

    public func decodeRows(_ rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws(FormatError) {
        let c = cols, rb = type.rowBytes(cols: c)!
        guard rows.lowerBound >= 0, rows.upperBound <= shape[0] else {
            throw FormatError.invalidTensor(file: path, tensor: name, message: "rows \(rows) outside 0..<\(shape[0])")
        }
        decoder(type, file.bytes.baseAddress! + offset + rows.lowerBound * rb, rows.count * (c / type.blockSize), out)
    }

    public func contentHash() -> UInt64 { XXH64.hash(UnsafeRawBufferPointer(rebasing: file.bytes[offset..<(offset + byteCount)])) }
    public func dontNeed() { file.dontNeed(offset: offset, count: byteCount) }
    public func willNeed(bytes: Int) { file.willNeed(offset: offset, count: min(bytes, byteCount)) }
}

/// A tensor whose rows the file stores reordered (attention Q and K, `GGUFRowPermutation`), read
/// back in the model's order row by row — no copy of the tensor is made.
public struct PermutedRowsTensor: EncodedTensor, @unchecked Sendable {
    public let inner: TensorSource
    public let permutation: GGUFRowPermutation

    public var name: String { inner.name }
    public var shape: [Int] { inner.shape }
    public var path: String { inner.path }
    public var codeDType: DType { inner.dtype }
    public var byteCount: Int { inner.byteCount }
    public var storageDescription: String { inner.storageDescription + ", rows permuted per head" }

    public func decodeRows(_ rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws(FormatError) {
        let w = inner.rowWidth
        for r in rows {
            let s = permutation.stored(r)
            try inner.readRows(s..<(s + 1), into: out + (r - rows.lowerBound) * w)
        }
    }

    public func contentHash() -> UInt64 { inner.contentHash() }
    public func dontNeed() { inner.dontNeed() }
    public func willNeed(bytes: Int) { inner.willNeed(bytes: bytes) }
}

extension ModelReport {
    /// A GGUF file as `inspect` shows models: the architecture rebuilt from its metadata, and its
    /// tensor table as stored (GGUF names, ggml types, row-major shapes) with each tensor's role.
    /// Bytes of block-quantized tensors count as U8.
    public init(gguf g: GGUFModel) {
        let f = g.file
        var rows: [Row] = []
        var stored: [TensorInfo] = []
        for t in f.tensors {
            let r = NemotronHGGUF.role(of: t.name)
            rows.append(Row(name: t.name, dtype: t.type.name.uppercased(), shape: t.shape, role: r?.role, layer: r?.layer,
                            note: r == nil ? "unexpected" : nil))
            let d: DType = t.type == .f32 ? .f32 : t.type == .f16 ? .f16 : t.type == .bf16 ? .bf16 : .u8
            stored.append(TensorInfo(name: t.name, dtype: d, shape: t.shape, offset: t.offset, byteCount: t.byteCount))
        }
        let arch = f.value("general.architecture")?.stringValue ?? "?"
        self.init(path: f.path, format: "GGUF v\(f.version), \(arch)", fileCount: 1, config: g.config,
                  stats: ModelStats(map: g.map, stored: stored), rows: rows)
    }
}
