import Formats

/// What `inspect` shows about a packed file: per tensor, how each row segment is stored (scheme,
/// where its scales sit, what it costs), plus the provenance the header carries (producer, recipe,
/// source checksums, stored files).
///
/// Built from the header alone — no payload is read — so inspecting a 17 GB pack is instant.
public struct PackedInspection: Sendable {
    public struct Segment: Sendable {
        /// "" for a whole tensor; z, x, B, C, dt for Mamba in_proj.
        public var name: String
        public var rows: Range<Int>
        public var scheme: QuantScheme
        public var blockRows: Int?
        /// Where the scales are and what each covers, e.g. `scales [128, 2] per group of 128 cols`.
        public var layout: String
        /// Stored bytes of the segment's sections (codes, scales, zero points).
        public var storedBytes: Int
        /// Encoding of the codes section (raw, or zstd-bytegroup2 for a compressed BF16 segment).
        public var codesEncoding: SectionEncoding
    }

    public struct Tensor: Sendable {
        public var name: String
        public var role: TensorRole
        public var layer: Int?
        public var expert: Int?
        public var shape: [Int]
        public var sourceDType: DType
        /// Segment schemes joined, e.g. `int4-g128-sym+bf16`.
        public var scheme: String
        public var segments: [Segment]
        public var elements: Int
        public var storedBytes: Int

        /// Bytes the tensor took in the source checkpoint.
        public var sourceBytes: Int { elements * sourceDType.byteSize }
        public var bitsPerWeight: Double { elements == 0 ? 0 : Double(storedBytes) * 8 / Double(elements) }
        /// Source bytes over stored bytes (2.0 = half the size).
        public var compression: Double { storedBytes == 0 ? 0 : Double(sourceBytes) / Double(storedBytes) }
    }

    public var path: String
    public var fileBytes: Int
    public var formatVersion: Int
    public var config: ModelConfig
    /// `{"name", "version"}` of the writer, as stored.
    public var producer: JSONValue?
    /// The resolved recipe, as stored.
    public var recipe: JSONValue?
    /// One entry per source file: `file`, `bytes`, `header_xxh64`.
    public var sources: [JSONValue]
    public var blobs: [(name: String, section: PackedSection)]
    public var tensors: [Tensor]

    public init(file: PackedFile) throws {
        path = file.path
        fileBytes = file.file.count
        formatVersion = file.header["version"]?.intValue ?? Int(PackedWriter.version)
        config = file.config
        producer = file.header["producer"]
        recipe = file.header["recipe"]
        sources = file.header["sources"]?.arrayValue ?? []
        blobs = file.blobs.keys.sorted().map { ($0, file.blobs[$0]!) }
        tensors = try file.tensors.map { t in
            let plan = try TensorPlan(packed: t, file: file.path)
            let segs = plan.segments.map { s in
                let names = Set(s.sections(cols: plan.cols).map(\.name))
                let parts = t.sections.filter { names.contains($0.key) }
                return Segment(name: s.name, rows: s.rows, scheme: s.scheme, blockRows: s.blockRows,
                               layout: Self.layout(s, cols: plan.cols, codes: t.sections[s.section("codes")]),
                               storedBytes: parts.values.reduce(0) { $0 + $1.length },
                               codesEncoding: t.sections[s.section("codes")]?.encoding ?? .raw)
            }
            return Tensor(name: t.name, role: t.role, layer: t.layer, expert: t.expert, shape: t.shape,
                          sourceDType: t.sourceDType, scheme: t.scheme, segments: segs,
                          elements: t.shape.reduce(1, *), storedBytes: t.sections.values.reduce(0) { $0 + $1.length })
        }
    }

    /// Human description of where a segment's scales are and what each one covers.
    static func layout(_ s: TensorPlan.Segment, cols: Int, codes: PackedSection?) -> String {
        let n = s.rows.count
        let codec = s.scheme.codec
        if let rule = codec.rowBlockScale {
            let perRow = rule.storage == .globalScales ? codec.describeScales(rows: n, cols: cols) + ", " : ""
            let what = rule.storage == .globalScales ? "global scales" : "scales"
            guard let b = s.blockRows, b < n else { return perRow + (rule.storage == .globalScales ? "one global scale" : "one scale") }
            let k = (n + b - 1) / b
            let unit: String
            switch s.name {
            case "z", "x": unit = "SSM head"
            case "B", "C": unit = "B/C group"
            default: unit = "block"
            }
            return perRow + "\(what) [\(k)] one per \(unit) (\(b) rows)"
        }
        if codec.grid == nil {
            guard let c = codes, c.encoding != .raw, c.rawLength > 0 else { return "no scales, raw" }
            let ratio = Double(c.length) / Double(c.rawLength)
            return "no scales, \(c.encoding.rawValue) to \(Int((ratio * 100).rounded()))%"
        }
        return codec.describeScales(rows: n, cols: cols)
    }

    // MARK: totals

    public var storedTensorBytes: Int { tensors.reduce(0) { $0 + $1.storedBytes } }
    public var sourceBytes: Int { tensors.reduce(0) { $0 + $1.sourceBytes } }
    public var elements: Int { tensors.reduce(0) { $0 + $1.elements } }
    /// Stored tensor bytes (codes, scales, zero points, high-precision tensors) per element, as
    /// `convert` reports it; header and blobs excluded.
    public var bitsPerWeight: Double { elements == 0 ? 0 : Double(storedTensorBytes) * 8 / Double(elements) }
    public var compression: Double { storedTensorBytes == 0 ? 0 : Double(sourceBytes) / Double(storedTensorBytes) }

    /// Stored bytes and tensor counts per segment scheme, largest first.
    public var bytesByScheme: [(scheme: String, bytes: Int, segments: Int)] {
        var by: [String: (Int, Int)] = [:]
        for t in tensors {
            for s in t.segments {
                let v = by[s.scheme.description] ?? (0, 0)
                by[s.scheme.description] = (v.0 + s.storedBytes, v.1 + 1)
            }
        }
        return by.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.scheme < $1.scheme }
    }

    /// Parameter counts as `ModelStats` counts them for a checkpoint (router correction biases
    /// are buffers; active = everything but the routed experts, plus top-k of them per layer), so
    /// a pack and its source report the same numbers. Bytes are the source's, per source dtype.
    public var stats: ModelStats {
        var params = 0, buffers = 0
        var routed: [Int: (sum: Int, count: Int)] = [:]
        var bytes: [DType: Int] = [:]
        for t in tensors {
            bytes[t.sourceDType, default: 0] += t.sourceBytes
            if t.role == .routerBias { buffers += t.elements; continue }
            if t.role == .expertUp || t.role == .expertDown {
                var r = routed[t.layer ?? -1] ?? (0, 0)
                r.sum += t.elements
                if t.role == .expertUp { r.count += 1 }
                routed[t.layer ?? -1] = r
            }
            params += t.elements
        }
        var active = params
        let topK = config.moe?.topK ?? 0
        for (_, r) in routed where r.count > 0 { active += r.sum / r.count * topK - r.sum }
        return ModelStats(parameters: params, activeParameters: active, bufferElements: buffers, bytesByDType: bytes)
    }

    /// The packed-specific part of `inspect --json`; the CLI merges it with the architecture summary.
    public var json: JSONObject {
        var o = JSONObject()
        o["format_version"] = .int(formatVersion)
        o["file_bytes"] = .int(fileBytes)
        o["producer"] = producer ?? .null
        o["recipe"] = recipe ?? .null
        o["sources"] = .array(sources)
        var b = JSONObject()
        for (name, s) in blobs {
            b[name] = ["stored_bytes": .int(s.length), "bytes": .int(s.rawLength), "encoding": .string(s.encoding.rawValue)]
        }
        o["blobs"] = .object(b)
        o["stored_tensor_bytes"] = .int(storedTensorBytes)
        o["source_bytes"] = .int(sourceBytes)
        o["bits_per_weight"] = .number(roundDigits(bitsPerWeight, 4))
        o["compression"] = .number(roundDigits(compression, 4))
        var schemes = JSONObject()
        for s in bytesByScheme { schemes[s.scheme] = ["stored_bytes": .int(s.bytes), "segments": .int(s.segments)] }
        o["bytes_by_scheme"] = .object(schemes)
        o["tensors"] = .array(tensors.map(\.json))
        return o
    }
}

extension PackedInspection.Tensor {
    public var json: JSONValue {
        var o: JSONObject = ["name": .string(name), "role": .string(role.rawValue)]
        if let l = layer { o["layer"] = .int(l) }
        if let e = expert { o["expert"] = .int(e) }
        o["shape"] = .array(shape.map { .int($0) })
        o["source_dtype"] = .string(sourceDType.rawValue)
        o["scheme"] = .string(scheme)
        o["stored_bytes"] = .int(storedBytes)
        o["bits_per_weight"] = .number(roundDigits(bitsPerWeight, 4))
        o["compression"] = .number(roundDigits(compression, 4))
        o["segments"] = .array(segments.map { s in
            var j: JSONObject = ["name": .string(s.name), "rows": [.int(s.rows.lowerBound), .int(s.rows.upperBound)],
                                 "scheme": .string(s.scheme.description)]
            if let b = s.blockRows, s.scheme.codec.rowBlockScale != nil { j["block_rows"] = .int(b) }
            j["layout"] = .string(s.layout)
            j["stored_bytes"] = .int(s.storedBytes)
            j["codes_encoding"] = .string(s.codesEncoding.rawValue)
            return .object(j)
        })
        return .object(o)
    }
}

func roundDigits(_ x: Double, _ digits: Int) -> Double {
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    return (x * p).rounded() / p
}
