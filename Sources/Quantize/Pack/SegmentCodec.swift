import Formats

/// Encodes and decodes one row segment of a tensor plan through its scheme's codec, handing each
/// block of rows (an SSM head, a B/C group, or the whole segment) its block scale for schemes that
/// have one (fp8-tensor, NVFP4), which the plain codecs don't know about.
public enum SegmentCodec {
    /// Encodes rows [0, n) of `w` (the segment's rows [firstRow, firstRow + n)) into `codes`,
    /// `scales`, `zeroPoints` (which address the first of these rows). `blockScales` carries the
    /// precomputed block scales, one per block of `segment.blockRows` rows (or one for the segment).
    public static func encode(_ w: UnsafePointer<Float>, rows n: Int, cols: Int, segment: TensorPlan.Segment,
                              firstRow: Int, blockScales: [Float]?, codes: UnsafeMutableRawPointer,
                              scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        let codec = segment.scheme.codec
        guard let rule = codec.rowBlockScale else {
            codec.encode(w, cols: cols, rows: 0..<n, rowScale: 1, codes: codes, scales: scales, zeroPoints: zeroPoints)
            return
        }
        let bs = blockScales!
        let block = max(1, segment.blockRows ?? segment.rows.count)
        let perRowScales = rule.storage == .scales ? nil : scales
        var r = 0
        while r < n {
            let b = (firstRow + r) / block
            let end = min(n, (b + 1) * block - firstRow)
            codec.encode(w, cols: cols, rows: r..<end, rowScale: bs[min(b, bs.count - 1)], codes: codes,
                         scales: perRowScales, zeroPoints: zeroPoints)
            r = end
        }
    }

    /// Decodes a whole segment into `out` ([segment rows, cols]). `globalScales` is the segment's
    /// `global_scales` section for schemes that store one.
    public static func decode(codes: UnsafeRawPointer, scales: UnsafeRawPointer?, zeroPoints: UnsafePointer<UInt8>?,
                              cols: Int, segment: TensorPlan.Segment, into out: UnsafeMutablePointer<Float>,
                              globalScales: UnsafePointer<Float>? = nil) {
        let n = segment.rows.count
        let codec = segment.scheme.codec
        guard let rule = codec.rowBlockScale else {
            codec.decode(codes: codes, scales: scales, zeroPoints: zeroPoints, rowScale: 1, cols: cols, rows: 0..<n, into: out)
            return
        }
        let block = max(1, segment.blockRows ?? n)
        let bs = rule.storage == .scales ? scales!.assumingMemoryBound(to: Float.self) : globalScales!
        var r = 0, b = 0
        while r < n {
            let end = min(n, r + block)
            codec.decode(codes: codes, scales: rule.storage == .scales ? nil : scales, zeroPoints: zeroPoints,
                         rowScale: bs[b], cols: cols, rows: r..<end, into: out)
            r = end; b += 1
        }
    }

    /// The dtype whose bytes a high-precision scheme stores, when it equals the source's, so the
    /// converter can copy source bytes unchanged.
    public static func isVerbatim(_ s: QuantScheme, source: DType) -> Bool { s.codec.verbatimDType == source }

    public static func compression(for s: QuantScheme) -> SectionEncoding { s.codec.compression }
}

extension TensorPlan.Segment {
    /// Name prefix of this segment's sections: `codes` for a whole tensor, `z.codes` for a segment.
    public func section(_ part: String) -> String { name.isEmpty ? part : "\(name).\(part)" }

    var json: JSONValue {
        var o: JSONObject = ["name": .string(name), "rows": [.int(rows.lowerBound), .int(rows.upperBound)],
                             "scheme": .string(scheme.description)]
        if let b = blockRows, scheme.codec.rowBlockScale != nil { o["block_rows"] = .int(b) }
        return .object(o)
    }

    init(json: JSONValue, file: String, tensor: String) throws {
        guard let o = json.objectValue, let name = o["name"]?.stringValue,
              let r = o["rows"]?.arrayValue, r.count == 2, let a = r[0].intValue, let b = r[1].intValue, a >= 0, b >= a,
              let ss = o["scheme"]?.stringValue else {
            throw FormatError.invalidTensor(file: file, tensor: tensor, message: "malformed segment entry")
        }
        guard let s = QuantScheme(ss) else {
            throw FormatError.unsupported(file: file, tensor: tensor, message: "unknown scheme '\(ss)'")
        }
        let block = o["block_rows"]?.intValue
        if let bl = block, bl <= 0 { throw FormatError.invalidTensor(file: file, tensor: tensor, message: "block_rows must be positive") }
        self.init(name: name, rows: a..<b, scheme: s, blockRows: block)
    }
}

extension TensorPlan {
    /// Reads the plan back from a packed tensor's attributes.
    public init(packed t: PackedTensor, file: String) throws {
        let (rows, cols) = Recipe.storageShape(role: t.role, shape: t.shape)
        guard let arr = t.attributes["segments"]?.arrayValue, !arr.isEmpty else {
            throw FormatError.invalidTensor(file: file, tensor: t.name, message: "no segments in the tensor entry")
        }
        var segs: [Segment] = []
        var next = 0
        for s in arr {
            let seg = try Segment(json: s, file: file, tensor: t.name)
            guard seg.rows.lowerBound == next, seg.rows.upperBound <= rows else {
                throw FormatError.invalidTensor(file: file, tensor: t.name, message: "segments do not tile the \(rows) rows")
            }
            next = seg.rows.upperBound
            segs.append(seg)
        }
        guard next == rows else { throw FormatError.invalidTensor(file: file, tensor: t.name, message: "segments cover \(next) of \(rows) rows") }
        self.init(segments: segs, rows: rows, cols: cols)
        try checkSections(of: t, file: file)
    }

    /// Each segment's sections are exactly those its scheme's codec declares, each decoding to
    /// exactly the bytes the codec needs for its rows, and nothing else is listed: decoders index
    /// by the codec's layout, so a section of another size is an out-of-bounds read or write.
    func checkSections(of t: PackedTensor, file: String) throws(FormatError) {
        var wanted: [String: Int] = [:]
        for seg in segments {
            for spec in seg.sections(cols: cols) { wanted[spec.name] = spec.bytes }
        }
        for k in wanted.keys.sorted() {
            guard let s = t.sections[k] else {
                throw FormatError.invalidTensor(file: file, tensor: t.name, message: "missing section '\(k)' that its scheme stores")
            }
            guard s.rawLength == wanted[k]! else {
                throw FormatError.invalidTensor(file: file, tensor: t.name,
                                                message: "section '\(k)' holds \(s.rawLength) bytes, its scheme needs \(wanted[k]!)")
            }
        }
        if let extra = t.sections.keys.sorted().first(where: { wanted[$0] == nil }) {
            throw FormatError.invalidTensor(file: file, tensor: t.name, message: "section '\(extra)' is not one its scheme stores")
        }
    }

    public var segmentsJSON: JSONValue { .array(segments.map(\.json)) }
}
