import Formats

extension Converter {
    /// Stores segment `seg` by copying the source's codes and scales, when its codec stores
    /// exactly what the source holds (`QuantCodec.scaledCodeDType`): a ModelOpt FP8 weight
    /// converted to `fp8-channel`, or to `fp8-tensor` when each block of rows shares one source
    /// scale. The values read back are then the source's bit for bit, where re-quantizing the
    /// decoded values could move codes. Returns false (nothing written) when the copy does not fit.
    func copyScaledCodes(_ seg: TensorPlan.Segment, _ sc: ScaledCodes, tensor: String, file: String,
                         to writer: TensorSink) throws -> Bool {
        let codec = seg.scheme.codec
        guard sc.codeElement == .f8e4m3, codec.scaledCodeDType == sc.codeElement, !codec.hasZeroPoints,
              codec.codeBytesPerRow(cols: sc.cols) == sc.cols else { return false }
        let rows = seg.rows
        let scales: [Float]
        if codec.scalesPerRow(cols: sc.cols) == 1, codec.scaleElement == .f32, codec.rowBlockScale == nil {
            scales = Array(sc.rowScales[rows])
        } else if codec.scalesPerRow(cols: sc.cols) == 0, codec.rowBlockScale?.storage == .scales {
            // One scale per block of rows: the copy holds only if the source's rows in each block agree.
            let block = max(1, seg.blockRows ?? rows.count)
            var blockScales: [Float] = []
            var r = rows.lowerBound
            while r < rows.upperBound {
                let end = min(rows.upperBound, r + block)
                let s = sc.rowScales[r]
                guard sc.rowScales[r..<end].allSatisfy({ $0 == s }) else { return false }
                blockScales.append(s)
                r = end
            }
            guard blockScales.count == seg.rowBlocks else { return false }
            scales = blockScales
        } else {
            return false
        }
        let codes = UnsafeRawBufferPointer(rebasing: sc.codes[(rows.lowerBound * sc.cols)..<(rows.upperBound * sc.cols)])
        // The codes are stored unchanged, so a NaN code would be stored too: refuse it, as for any source.
        // E4M3 has no infinity; its NaN is the all-ones magnitude 0x7F.
        if let i = codes.firstIndex(where: { $0 & 0x7F == 0x7F }) {
            throw FormatError.invalidTensor(file: file, tensor: tensor, message:
                "non-finite \(sc.codeElement.rawValue) code at [\(rows.lowerBound + i / sc.cols), \(i % sc.cols)]; `nemo-convert inspect --verify` counts them per tensor")
        }
        try writer.beginSection(seg.section("codes"), encoding: .raw)
        var off = 0
        while off < codes.count {
            let n = min(chunkBytes, codes.count - off)
            try writer.appendToSection(UnsafeRawBufferPointer(rebasing: codes[off..<(off + n)]))
            off += n
        }
        try writer.endSection()
        try scales.withUnsafeBytes { try writer.writeSection(seg.section("scales"), $0) }
        return true
    }
}

extension Converter {
    /// Stores segment `seg` by copying integer codes, scales and zero points that the source
    /// already holds in the target codec's terms (a compressed-tensors INT4 weight converted to
    /// `int4-gG-sym|asym` with the same G, an INT8 per-channel one to `int8`), so an
    /// export → import → export round trip is byte-identical; re-quantizing the decoded values
    /// could move a scale by an ulp. Returns false (nothing written) when the scheme differs.
    func copyIntegerCodes(_ seg: TensorPlan.Segment, _ ic: IntegerCodes, to writer: TensorSink) throws -> Bool {
        let codec = seg.scheme.codec
        if let c = codec as? Int4GroupCodec {
            guard ic.bits == 4, c.groupSize == ic.group, c.symmetric == ic.symmetric else { return false }
        } else if codec is Int8ChannelCodec {
            guard ic.bits == 8, ic.symmetric, ic.group == ic.cols else { return false }
        } else {
            return false
        }
        let perRow = codec.codeBytesPerRow(cols: ic.cols), groups = ic.cols / ic.group
        let rowsPerChunk = max(1, chunkBytes / max(1, perRow))
        let buf = UnsafeMutablePointer<UInt8>.allocate(capacity: min(seg.rows.count, rowsPerChunk) * perRow + 1)
        defer { buf.deallocate() }
        try writer.beginSection(seg.section("codes"), encoding: .raw)
        var r = seg.rows.lowerBound
        while r < seg.rows.upperBound {
            let m = min(rowsPerChunk, seg.rows.upperBound - r)
            for i in 0..<m { ic.row(r + i, buf + i * perRow) }
            try writer.appendToSection(UnsafeRawBufferPointer(start: buf, count: m * perRow))
            r += m
        }
        try writer.endSection()
        let span = (seg.rows.lowerBound * groups)..<(seg.rows.upperBound * groups)
        try Array(ic.scales[span]).withUnsafeBytes { try writer.writeSection(seg.section("scales"), $0) }
        if let z = ic.zeroPoints {
            try Array(z[span]).withUnsafeBytes { try writer.writeSection(seg.section("zero_points"), $0) }
        }
        return true
    }
}

extension Converter {
    /// Stores segment `seg` by copying an NVFP4 source's codes, block scales and second-level
    /// scale (a ModelOpt NVFP4 weight converted to `nvfp4`), so export → import → export is
    /// byte-identical: re-quantizing the decoded values would pick a new global scale from their
    /// (smaller) maximum and move codes. Every row block of the segment gets the source's one
    /// second-level scale. Returns false (nothing written) for another scheme.
    func copyNVFP4Codes(_ seg: TensorPlan.Segment, _ nc: NVFP4Codes, to writer: TensorSink) throws -> Bool {
        guard seg.scheme.codec is NVFP4Codec, nc.cols % NVFP4Codec.blockSize == 0 else { return false }
        let half = nc.cols / 2, blocks = nc.cols / NVFP4Codec.blockSize, rows = seg.rows
        try writer.beginSection(seg.section("codes"), encoding: .raw)
        var off = rows.lowerBound * half
        while off < rows.upperBound * half {
            let n = min(chunkBytes, rows.upperBound * half - off)
            try writer.appendToSection(UnsafeRawBufferPointer(rebasing: nc.codes[off..<(off + n)]))
            off += n
        }
        try writer.endSection()
        try writer.writeSection(seg.section("scales"), UnsafeRawBufferPointer(rebasing: nc.blockScales[(rows.lowerBound * blocks)..<(rows.upperBound * blocks)]))
        try [Float](repeating: nc.globalScale, count: seg.rowBlocks).withUnsafeBytes { try writer.writeSection(seg.section("global_scales"), $0) }
        return true
    }
}
