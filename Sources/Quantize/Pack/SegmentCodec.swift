import Formats

/// Encodes and decodes one row segment of a tensor plan, including fp8-tensor scales per block of
/// rows (per SSM head or B/C group), which the plain codecs don't know about.
public enum SegmentCodec {
    /// Encodes rows [0, n) of `w` (the segment's own rows) into `codes`, `scales`, `zeroPoints`.
    /// `blockScales` carries precomputed fp8-tensor scales, one per block (or one for the segment).
    public static func encode(_ w: UnsafePointer<Float>, rows n: Int, cols: Int, segment: TensorPlan.Segment,
                              firstRow: Int, blockScales: [Float]?, codes: UnsafeMutableRawPointer,
                              scales: UnsafeMutablePointer<Float>?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        if segment.scheme == .fp8Tensor {
            let bs = blockScales!
            let block = segment.blockRows ?? segment.rows.count
            let c = codes.assumingMemoryBound(to: UInt8.self)
            var r = 0
            while r < n {
                let row = firstRow + r
                let b = row / max(1, block)
                let end = min(n, (b + 1) * block - firstRow)
                FP8E4M3.encode(w + r * cols, count: (end - r) * cols, scale: bs[min(b, bs.count - 1)], codes: c + r * cols)
                r = end
            }
            return
        }
        Codec.encode(w, cols: cols, rows: 0..<n, scheme: segment.scheme, codes: codes, scales: scales, zeroPoints: zeroPoints)
    }

    /// Decodes a whole segment into `out` ([segment rows, cols]).
    public static func decode(codes: UnsafeRawPointer, scales: UnsafePointer<Float>?, zeroPoints: UnsafePointer<UInt8>?,
                              cols: Int, segment: TensorPlan.Segment, into out: UnsafeMutablePointer<Float>) {
        let n = segment.rows.count
        if segment.scheme == .fp8Tensor {
            let block = segment.blockRows ?? n
            let c = codes.assumingMemoryBound(to: UInt8.self)
            var r = 0, b = 0
            while r < n {
                let end = min(n, r + max(1, block))
                FP8E4M3.decode(codes: c + r * cols, count: (end - r) * cols, scale: scales![b], into: out + r * cols)
                r = end; b += 1
            }
            return
        }
        Codec.decode(codes: codes, scales: scales, zeroPoints: zeroPoints, cols: cols, rows: 0..<n,
                     scheme: segment.scheme, into: out)
    }

    /// The dtype whose bytes a high-precision scheme stores, when it equals the source's, so the
    /// converter can copy source bytes unchanged.
    public static func isVerbatim(_ s: QuantScheme, source: DType) -> Bool {
        (s == .bf16 && source == .bf16) || (s == .f16 && source == .f16) || (s == .f32 && source == .f32)
    }

    public static func compression(for s: QuantScheme) -> SectionEncoding {
        switch s {
        case .bf16, .f16: return .zstdBytes2
        case .f32: return .zstdBytes4
        default: return .raw   // quantized codes barely compress (docs/PERFORMANCE.md: 0.82–0.91)
        }
    }
}

extension TensorPlan.Segment {
    /// Name prefix of this segment's sections: `codes` for a whole tensor, `z.codes` for a segment.
    public func section(_ part: String) -> String { name.isEmpty ? part : "\(name).\(part)" }

    var json: JSONValue {
        var o: JSONObject = ["name": .string(name), "rows": [.int(rows.lowerBound), .int(rows.upperBound)],
                             "scheme": .string(scheme.description)]
        if let b = blockRows, scheme == .fp8Tensor { o["block_rows"] = .int(b) }
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

    /// Each segment's sections are exactly those its scheme stores, each decoding to exactly the
    /// bytes the scheme needs for its rows, and nothing else is listed: decoders index by the
    /// scheme's layout, so a section of another size is an out-of-bounds read or write.
    func checkSections(of t: PackedTensor, file: String) throws(FormatError) {
        var wanted: [String: Int] = [:]
        for seg in segments {
            let layout = seg.scheme.layout(rows: seg.rows.count, cols: cols)
            wanted[seg.section("codes")] = layout.codeBytes
            let scales = seg.scaleCount(cols: cols)
            if scales > 0 { wanted[seg.section("scales")] = scales * 4 }
            if layout.zeroPointCount > 0 { wanted[seg.section("zero_points")] = layout.zeroPointCount }
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
