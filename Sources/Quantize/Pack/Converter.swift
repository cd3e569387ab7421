import Foundation
import Formats

/// What a conversion did, for the CLI to print.
public struct ConvertReport: Sendable {
    public struct Entry: Sendable {
        public var name: String
        public var role: TensorRole
        public var shape: [Int]
        public var scheme: String
        public var inputBytes: Int
        public var outputBytes: Int
        public var elements: Int
    }
    public var output: String
    public var inputBytes: Int
    public var outputBytes: Int
    public var seconds: Double
    public var tensors: [Entry]
    public var compressedBytesSaved: Int

    /// Stored bits per parameter over every tensor of the model, scales and high-precision
    /// leftovers included.
    public var bitsPerWeight: Double {
        let n = tensors.reduce(0) { $0 + $1.elements }
        return n == 0 ? 0 : Double(tensors.reduce(0) { $0 + $1.outputBytes }) * 8 / Double(n)
    }
}

/// Streams a checkpoint into a `TensorSink` (a packed file by default), tensor by tensor and,
/// within a tensor, in chunks of rows, so memory holds a few chunks (64 MB of Float32 by default),
/// never a whole model or even a whole embedding.
///
/// Sources are read through `TensorSource`: plain BF16/F16/F32 tensors in place (the fused
/// round-to-nearest path and verbatim copies read the mapped bytes), encoded ones (an FP8
/// checkpoint's codes and scales) a chunk of decoded rows at a time — or, when the target scheme
/// stores exactly what the source holds, by copying codes and scales (`copyScaledCodes`).
public final class Converter {
    public let map: TensorMap
    public let recipe: Recipe
    public var chunkBytes = 64 << 20
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Pause after each tensor; only for tests that interrupt a conversion midway
    /// (NEMO_CONVERT_TEST_DELAY_MS).
    public var delayPerTensor: Double = 0
    let scratch = ConverterScratch()

    public init(map: TensorMap, recipe: Recipe) {
        self.map = map
        self.recipe = recipe
    }

    /// Every tensor's plan, in file order.
    public func plans() throws -> [(BoundTensor, TensorPlan)] {
        try map.tensors.map { t in
            (t, try recipe.plan(name: t.name, role: t.role, layer: t.layer, shape: t.data.shape,
                                sourceDType: t.data.dtype, config: map.config))
        }
    }

    /// What in the plans `sink` cannot store, one line each; empty when it takes them all.
    public func violations(of sink: TensorSink) throws -> [String] {
        SinkCheck.violations(try plans(), rules: sink.rules)
    }

    /// Converts into `output` atomically. `metadata` goes into the header next to the model
    /// config, recipe and producer; `blobs` are stored files (tokenizer.json).
    public func convert(to output: String, metadata: JSONObject, blobs: [(String, [UInt8])],
                        progress: ((_ done: Int, _ total: Int, _ name: String) -> Void)? = nil) throws -> ConvertReport {
        try convert(into: try PackedWriter(path: output), metadata: metadata, blobs: blobs, progress: progress)
    }

    /// Converts into `sink`, which is finished (renamed into place) on success and discarded on
    /// any error. The plan is checked against what the sink stores before anything is written.
    public func convert(into sink: TensorSink, metadata: JSONObject, blobs: [(String, [UInt8])],
                        progress: ((_ done: Int, _ total: Int, _ name: String) -> Void)? = nil) throws -> ConvertReport {
        let start = Date()
        do {
            let plans = try plans()
            try SinkCheck.require(plans, fit: sink)
            try sink.prepare(plans.map { $0.0.sinkTensor($0.1) })
            var entries: [ConvertReport.Entry] = []
            let totalIn = plans.reduce(0) { $0 + $1.0.data.byteCount }
            var doneIn = 0
            for (i, (t, plan)) in plans.enumerated() {
                progress?(doneIn, totalIn, t.name)
                // Cold files: have the kernel read the start of the next tensor while this one converts.
                if i + 1 < plans.count { plans[i + 1].0.data.willNeed(bytes: chunkBytes / 2) }
                entries.append(try writeTensor(t, plan, to: sink, attributes: runtimeAttributes(t)))
                doneIn += t.data.byteCount
                if delayPerTensor > 0 { Thread.sleep(forTimeInterval: delayPerTensor) }
            }
            try finish(sink, metadata: metadata, blobs: blobs)
            progress?(totalIn, totalIn, "")
            return ConvertReport(output: sink.path, inputBytes: totalIn, outputBytes: sink.fileSize,
                                 seconds: Date().timeIntervalSince(start), tensors: entries,
                                 compressedBytesSaved: sink.compressedBytesSaved)
        } catch {
            sink.discard()
            throw error
        }
    }

    /// A quantized source's static runtime scales of `t` (`TensorMap.runtimeScales`), for export
    /// formats that store them again: `source_input_scale` with the largest value it maps to
    /// (`source_input_scale_max`: ModelOpt divides the input amax by 448 beside an FP8 weight, by
    /// 6 · 448 beside an NVFP4 one) and an FP8 KV cache's `source_kv_scale`. Empty for plain sources.
    public func runtimeAttributes(_ t: BoundTensor) -> JSONObject {
        guard !map.runtimeScales.isEmpty else { return [:] }
        let stem = t.name.hasSuffix(".weight") ? String(t.name.dropLast(7)) : t.name
        var a = JSONObject()
        if let s = map.runtimeScales[stem + ".input_scale"] {
            a["source_input_scale"] = .number(Double(s))
            a["source_input_scale_max"] = .number(Double(t.data.encoded?.codeDType == .u8 ? ModelOptExport.nvfp4Max : ModelOptExport.fp8Max))
        }
        for k in [".k_scale", ".v_scale"] {
            if let s = map.runtimeScales[stem + k] { a["source_kv_scale"] = .number(Double(s)) }
        }
        return a
    }

    /// Stores the blobs and the header (metadata plus this converter's recipe) and renames the
    /// file into place.
    public func finish(_ writer: TensorSink, metadata: JSONObject, blobs: [(String, [UInt8])]) throws {
        for (name, bytes) in blobs { try writer.addBlob(name, bytes) }
        var meta = metadata
        meta["recipe"] = recipe.json
        try writer.finish(metadata: meta)
    }

    /// Encodes one tensor into `writer` and adds its table entry. `encoder` replaces
    /// round-to-nearest for the quantized segments (calibrated conversion); `attributes` are
    /// stored in the tensor's entry next to its segments.
    public func writeTensor(_ t: BoundTensor, _ plan: TensorPlan, to writer: TensorSink,
                            encoder: SegmentEncoder? = nil, attributes: JSONObject = [:]) throws -> ConvertReport.Entry {
        // The source data's hash (docs/FORMAT.md, `source_xxh64`) lets verify tell whether the
        // original it is given is the one this pack was made from. Computed on another core while
        // the tensor encodes, over the same pages, so it costs no extra read and little time.
        let hash = SourceHash()
        let hashing = DispatchGroup()
        DispatchQueue.global().async(group: hashing) { [data = t.data] in hash.value = data.contentHash() }
        let written: Int
        do {
            try writer.beginTensor(t.sinkTensor(plan))
            try write(t, plan, writer, encoder)
        } catch { hashing.wait(); throw error }
        hashing.wait()
        var attrs = attributes
        attrs["segments"] = plan.segmentsJSON
        attrs["source_xxh64"] = .string(XXH64.hex(hash.value))
        written = try writer.endTensor(attributes: attrs)
        // The source pages were read once; let the kernel drop them from our resident set.
        t.data.dontNeed()
        return .init(name: t.name, role: t.role, shape: t.data.shape, scheme: plan.summary,
                     inputBytes: t.data.byteCount, outputBytes: written, elements: t.data.elementCount)
    }

    private func write(_ t: BoundTensor, _ plan: TensorPlan, _ writer: TensorSink, _ encoder: SegmentEncoder?) throws {
        let cols = plan.cols, data = t.data
        let rowsPerChunk = max(1, chunkBytes / max(1, cols * 4))
        for seg in plan.segments {
            let n = seg.rows.count
            // High precision in the source's own dtype: copy the bytes, compressed where it pays —
            // unless an encoder is given, which may rewrite every row (activation-aware scaling
            // scales all columns of in_proj, its high-precision dt rows included).
            if encoder == nil, let src = data.plain, SegmentCodec.isVerbatim(seg.scheme, source: src.dtype) {
                let es = src.dtype.byteSize
                // Matrices stay raw although BF16 would compress to ~0.68: readers use them in
                // place (the embedding a few rows per batch, lm_head whole for every batch) instead
                // of decoding hundreds of MB each time, and zstd (~0.5 GB/s, one thread) would be
                // the slowest step of a conversion. Vectors (norms, conv, A_log, D) are compressed.
                try writer.beginSection(seg.section("codes"), encoding: t.role.isLinear ? .raw : SegmentCodec.compression(for: seg.scheme))
                var r = 0
                while r < n {
                    let m = min(rowsPerChunk, n - r)
                    let off = (seg.rows.lowerBound + r) * cols * es
                    let chunk = UnsafeRawBufferPointer(rebasing: src.bytes[off..<(off + m * cols * es)])
                    if NonFinite.any(chunk.baseAddress!, dtype: src.dtype, m * cols) {
                        let i = NonFinite.first(chunk.baseAddress!, dtype: src.dtype, m * cols)!
                        var v: Float = 0
                        FloatConversion.convert(UnsafeRawBufferPointer(rebasing: chunk[(i * es)..<((i + 1) * es)]), dtype: src.dtype, count: 1, into: &v)
                        throw FormatError.invalidTensor(file: src.path, tensor: t.name, message:
                            "non-finite value \(v) at [\(seg.rows.lowerBound + r + i / cols), \(i % cols)]; `nemo-convert inspect --verify` counts them per tensor")
                    }
                    try writer.appendToSection(chunk)
                    src.file.dontNeed(offset: src.info.offset + off, count: m * cols * es)
                    r += m
                }
                try writer.endSection()
                continue
            }
            // The source already stores this scheme's codes and scales: copy them, bit for bit.
            if encoder == nil, let sc = data.encoded?.scaledCodes, try copyScaledCodes(seg, sc, tensor: t.name, file: data.path, to: writer) {
                continue
            }
            if encoder == nil, let ic = data.encoded?.integerCodes, try copyIntegerCodes(seg, ic, to: writer) {
                continue
            }
            if encoder == nil, let nc = data.encoded?.nvfp4Codes, try copyNVFP4Codes(seg, nc, to: writer) {
                continue
            }
            if encoder == nil, let src = data.plain {
                try writeRoundToNearest(seg, src, cols: cols, tensor: t.name, to: writer)
                continue
            }
            let codec = seg.scheme.codec
            let perRowCodes = codec.codeBytesPerRow(cols: cols)
            let rule = codec.rowBlockScale
            // Per-row scales (bytes of the codec's scale element) and zero points; block scales apart.
            let spr = rule?.storage == .scales ? 0 : codec.scalesPerRow(cols: cols)
            let scaleStride = spr * codec.scaleElement.byteSize
            var scales = [UInt8](repeating: 0, count: n * scaleStride)
            var zeros = [UInt8](repeating: 0, count: codec.hasZeroPoints ? n * spr : 0)
            let floats = UnsafeMutablePointer<Float>.allocate(capacity: min(n, rowsPerChunk) * cols)
            defer { floats.deallocate() }
            let codes = UnsafeMutableRawPointer.allocate(byteCount: max(1, min(n, rowsPerChunk) * perRowCodes), alignment: 64)
            defer { codes.deallocate() }

            let bad = BadElements(workers: 1)
            defer { bad.deallocate() }
            func load(_ r: Int, _ m: Int) throws {
                // By element: the plan's rows (a vector is one row of n) need not be the source's.
                let first = (seg.rows.lowerBound + r) * cols
                try data.readElements(first..<(first + m * cols), into: floats)
                if NonFinite.any(floats, m * cols) {
                    bad.source(0, floats, m * cols, at: r * cols)
                    try bad.check(file: data.path, tensor: t.name, scheme: seg.scheme, firstRow: seg.rows.lowerBound, cols: cols)
                }
                encoder?.transform(floats, rows: m, cols: cols, segment: seg, firstRow: r)
            }

            // Block scales (fp8-tensor, NVFP4's global scale) need each block's absmax before
            // encoding: one extra pass over the rows.
            var blockScales: [Float]?
            if let rule {
                let block = max(1, seg.blockRows ?? n)
                var maxes = [Float](repeating: 0, count: seg.rowBlocks)
                var r = 0
                while r < n {
                    let m = min(rowsPerChunk, n - r)
                    try load(r, m)
                    for i in 0..<m {
                        let b = (r + i) / block
                        maxes[b] = max(maxes[b], FP8E4M3.absMax(floats + i * cols, count: cols))
                    }
                    r += m
                }
                blockScales = maxes.map(rule.scale)
            }

            try writer.beginSection(seg.section("codes"), encoding: .raw)
            var r = 0
            while r < n {
                let m = min(rowsPerChunk, n - r)
                try load(r, m)
                let bs = blockScales
                try scales.withUnsafeMutableBytes { sp in
                    try zeros.withUnsafeMutableBufferPointer { zp in
                        let sBase = sp.baseAddress, zBase = zp.baseAddress
                        // Rows are independent: split the chunk across threads.
                        let parts = max(1, min(threads, m / 16))
                        let fl = floats, cd = codes
                        DispatchQueue.concurrentPerform(iterations: parts) { p in
                            let a = m * p / parts, b = m * (p + 1) / parts
                            guard b > a else { return }
                            let sc = sBase.map { $0 + (r + a) * scaleStride }
                            let zp = zBase.map { $0 + (r + a) * spr }
                            if let enc = encoder {
                                enc.encode(fl + a * cols, rows: b - a, cols: cols, segment: seg, firstRow: r + a,
                                           blockScales: bs, codes: cd + a * perRowCodes, scales: sc, zeroPoints: zp)
                            } else {
                                SegmentCodec.encode(fl + a * cols, rows: b - a, cols: cols, segment: seg, firstRow: r + a,
                                                    blockScales: bs, codes: cd + a * perRowCodes, scales: sc, zeroPoints: zp)
                            }
                        }
                        if let d = codec.verbatimDType, d != .f32 {
                            if NonFinite.any(codes, dtype: d, m * cols) {
                                bad.encoded(0, floats, codes, d, m * cols, at: r * cols)
                                try bad.check(file: data.path, tensor: t.name, scheme: seg.scheme, firstRow: seg.rows.lowerBound, cols: cols)
                            }
                        }
                        try writer.appendToSection(UnsafeRawBufferPointer(start: codes, count: m * perRowCodes))
                    }
                }
                r += m
            }
            try writer.endSection()
            try writeScaleSections(seg, cols: cols, scales: scales, zeros: zeros, blockScales: blockScales,
                                   file: data.path, tensor: t.name, to: writer)
        }
    }
}

private final class SourceHash: @unchecked Sendable { var value: UInt64 = 0 }
