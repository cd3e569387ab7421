import Foundation
import Formats

/// Buffers one converter reuses for every tensor. Fresh allocations are backed lazily on this VM
/// (first touch 0.35–8.5 GB/s, docs/PERFORMANCE.md), and a 20 MB expert allocated and freed per tensor
/// paid that every time; these are touched once and kept.
final class ConverterScratch {
    private var codeBuffers: [UnsafeMutableRawPointer] = []
    private var codeCapacity = 0
    private var floatBuffers: [UnsafeMutablePointer<Float>] = []
    private var floatCapacity = 0

    /// Two code buffers of at least `bytes`: one is written out while the other is filled.
    func codes(_ bytes: Int) -> (UnsafeMutableRawPointer, UnsafeMutableRawPointer) {
        if bytes > codeCapacity {
            for b in codeBuffers { b.deallocate() }
            codeCapacity = max(bytes, 1)
            codeBuffers = (0..<2).map { _ in
                let p = UnsafeMutableRawPointer.allocate(byteCount: codeCapacity, alignment: 64)
                memset(p, 0, codeCapacity)
                return p
            }
        }
        return (codeBuffers[0], codeBuffers[1])
    }

    /// One Float buffer of at least `count` elements per worker.
    func floats(workers: Int, count: Int) -> [UnsafeMutablePointer<Float>] {
        if count > floatCapacity || workers > floatBuffers.count {
            for b in floatBuffers { b.deallocate() }
            floatCapacity = max(count, floatCapacity, 1)
            floatBuffers = (0..<workers).map { _ in
                let p = UnsafeMutablePointer<Float>.allocate(capacity: floatCapacity)
                p.initialize(repeating: 0, count: floatCapacity)
                return p
            }
        }
        return Array(floatBuffers.prefix(workers))
    }

    deinit {
        for b in codeBuffers { b.deallocate() }
        for b in floatBuffers { b.deallocate() }
    }
}

/// Where one chunk's workers write; each writes rows no other worker touches.
private struct Outputs: @unchecked Sendable {
    let codes: UnsafeMutableRawPointer
    let scales: UnsafeMutableRawPointer?
    let zeros: UnsafeMutablePointer<UInt8>?
}

/// A segment's source rows, widened a block of rows at a time into a worker's own buffer.
private struct RowBlocks: @unchecked Sendable {
    let base: UnsafeRawPointer
    let dtype: DType
    let cols: Int
    let rowsPerBlock: Int
    let buffers: [UnsafeMutablePointer<Float>]

    /// Calls `body` with rows [a, b) of the segment, `rowsPerBlock` at a time, in worker p's buffer.
    func each(_ a: Int, _ b: Int, _ p: Int, _ body: (UnsafeMutablePointer<Float>, _ row: Int, _ count: Int) -> Void) {
        let rowBytes = cols * dtype.byteSize
        var i = a
        while i < b {
            let m = min(rowsPerBlock, b - i)
            FloatConversion.convert(UnsafeRawBufferPointer(start: base + i * rowBytes, count: m * rowBytes),
                                    dtype: dtype, count: m * cols, into: buffers[p])
            body(buffers[p], i, m)
            i += m
        }
    }
}

extension Converter {
    /// FP32 elements a worker converts and encodes at a time: small enough that the rows stay in
    /// L2 between the two, so FP32 never goes out to memory and back.
    static let blockFloats = 1 << 16
    /// Codes written per chunk; one chunk is written while the next one is encoded.
    static let chunkCodeBytes = 16 << 20

    /// Round-to-nearest encoding of one quantized segment (no `SegmentEncoder`), bit for bit what
    /// `SegmentCodec.encode` gives over whole chunks. Each worker widens a few rows into its own
    /// cache-sized buffer and encodes them at once, then the source pages of the chunk are
    /// dropped from the resident set, so memory stays at a few chunks however large the tensor;
    /// the main thread writes the previous chunk's codes meanwhile.
    func writeRoundToNearest(_ seg: TensorPlan.Segment, _ src: TensorView, cols: Int, tensor: String,
                             to writer: TensorSink) throws {
        let n = seg.rows.count, es = src.dtype.byteSize, rowBytes = cols * es
        let codec = seg.scheme.codec, rule = codec.rowBlockScale
        let perRowCodes = codec.codeBytesPerRow(cols: cols)
        // Per-row scales (bytes of the codec's scale element) and zero points; block scales apart.
        let spr = rule?.storage == .scales ? 0 : codec.scalesPerRow(cols: cols)
        let scaleStride = spr * codec.scaleElement.byteSize
        var scales = [UInt8](repeating: 0, count: n * scaleStride)
        var zeros = [UInt8](repeating: 0, count: codec.hasZeroPoints ? n * spr : 0)
        let rowsPerBlock = max(1, Self.blockFloats / max(1, cols))
        let rowsPerChunk = max(1, min(n, Self.chunkCodeBytes / max(1, perRowCodes), chunkBytes / 2 / max(1, rowBytes)))
        let workers = max(1, threads)
        let buffers = scratch.floats(workers: workers, count: rowsPerBlock * cols)
        let (codesA, codesB) = scratch.codes(rowsPerChunk * perRowCodes)
        let segmentOffset = src.info.offset + seg.rows.lowerBound * rowBytes
        let rows = RowBlocks(base: src.file.bytes.baseAddress! + segmentOffset, dtype: src.dtype, cols: cols,
                             rowsPerBlock: rowsPerBlock, buffers: buffers)
        func parts(_ m: Int) -> Int { max(1, min(workers, (m + rowsPerBlock - 1) / rowsPerBlock)) }
        // Each worker notes the first non-finite element it met, in the source or in the codes
        // (f16 overflows above 65504), as a segment-relative flat index; Int.max = none.
        let bad = BadElements(workers: workers)
        defer { bad.deallocate() }
        let halfCodes: DType? = codec.verbatimDType == .f16 || codec.verbatimDType == .bf16 ? codec.verbatimDType : nil

        // Block scales (fp8-tensor, NVFP4's global scale) need each block's absmax before
        // encoding: one extra pass over the rows. Float max is order-independent, so per-worker
        // maxima merge to the same scales.
        var blockScales: [Float]?
        if let rule {
            let scaleCount = seg.rowBlocks
            let block = max(1, seg.blockRows ?? n), k = parts(n)
            let maxes = UnsafeMutablePointer<Float>.allocate(capacity: k * scaleCount)
            defer { maxes.deallocate() }
            maxes.initialize(repeating: 0, count: k * scaleCount)
            DispatchQueue.concurrentPerform(iterations: k) { p in
                let local = maxes + p * scaleCount
                rows.each(n * p / k, n * (p + 1) / k, p) { f, row, m in
                    for i in 0..<m {
                        let b = (row + i) / block
                        local[b] = max(local[b], FP8E4M3.absMax(f + i * cols, count: cols))
                    }
                }
            }
            var merged = [Float](repeating: 0, count: scaleCount)
            for p in 0..<k { for b in 0..<scaleCount { merged[b] = max(merged[b], maxes[p * scaleCount + b]) } }
            blockScales = merged.map(rule.scale)
        }

        try writer.beginSection(seg.section("codes"), encoding: .raw)
        try scales.withUnsafeMutableBytes { sp in
            try zeros.withUnsafeMutableBufferPointer { zp in
                let sBase = sp.baseAddress, zBase = zp.baseAddress, bs = blockScales
                let group = DispatchGroup(), file = src.file
                var pending: (codes: UnsafeMutableRawPointer, row: Int, rows: Int)?
                var r = 0, k = 0
                // On an error the chunk in flight still writes into scratch: wait for it first.
                defer { group.wait() }
                while r < n || pending != nil {
                    let m = min(rowsPerChunk, n - r)
                    let cur = k % 2 == 0 ? codesA : codesB
                    if m > 0 {
                        let r0 = r, q = parts(m), out = Outputs(codes: cur, scales: sBase, zeros: zBase)
                        if r0 + m < n {   // start reading the next chunk ahead (cold files)
                            src.file.willNeed(offset: segmentOffset + (r0 + m) * rowBytes, count: min(rowsPerChunk, n - r0 - m) * rowBytes)
                        }
                        DispatchQueue.global().async(group: group) {
                            DispatchQueue.concurrentPerform(iterations: q) { p in
                                rows.each(r0 + m * p / q, r0 + m * (p + 1) / q, p) { f, row, count in
                                    if NonFinite.any(f, count * cols) { bad.source(p, f, count * cols, at: row * cols) }
                                    let c = out.codes + (row - r0) * perRowCodes
                                    SegmentCodec.encode(f, rows: count, cols: cols, segment: seg, firstRow: row, blockScales: bs,
                                                        codes: c,
                                                        scales: out.scales.map { $0 + row * scaleStride },
                                                        zeroPoints: out.zeros.map { $0 + row * spr })
                                    if let d = halfCodes, NonFinite.any(c, dtype: d, count * cols) {
                                        bad.encoded(p, f, c, d, count * cols, at: row * cols)
                                    }
                                }
                            }
                            // Done with these source pages: unmapping them is work the main thread,
                            // busy writing, need not do.
                            file.dontNeed(offset: segmentOffset + r0 * rowBytes, count: m * rowBytes)
                        }
                    }
                    if let pc = pending {
                        try writer.appendToSection(UnsafeRawBufferPointer(start: pc.codes, count: pc.rows * perRowCodes))
                    }
                    group.wait()
                    try bad.check(file: src.path, tensor: tensor, scheme: seg.scheme, firstRow: seg.rows.lowerBound, cols: cols)
                    pending = m > 0 ? (cur, r, m) : nil
                    r += m; k += 1
                }
            }
        }
        try writer.endSection()
        try writeScaleSections(seg, cols: cols, scales: scales, zeros: zeros, blockScales: blockScales,
                               file: src.path, tensor: tensor, to: writer)
    }

    /// Writes a segment's scale sections after its codes, as its codec declares them: per-row
    /// scales (`scales`, in the codec's element type) and zero points, and the block scales —
    /// in `scales` (fp8-tensor) or in `global_scales` (NVFP4). Float32 scales are checked finite.
    func writeScaleSections(_ seg: TensorPlan.Segment, cols: Int, scales: [UInt8], zeros: [UInt8], blockScales: [Float]?,
                            file: String, tensor: String, to writer: TensorSink) throws {
        let codec = seg.scheme.codec
        if codec.scaleElement == .f32 {
            try BadElements.checkScales(scales.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) },
                                        file: file, tensor: tensor, scheme: seg.scheme)
        }
        if let bs = blockScales { try BadElements.checkScales(bs, file: file, tensor: tensor, scheme: seg.scheme) }
        if codec.rowBlockScale?.storage == .scales {
            try blockScales!.withUnsafeBytes { try writer.writeSection(seg.section("scales"), $0) }
        } else if !scales.isEmpty {
            try scales.withUnsafeBytes { try writer.writeSection(seg.section("scales"), $0) }
        }
        if !zeros.isEmpty {
            try zeros.withUnsafeBytes { try writer.writeSection(seg.section("zero_points"), $0) }
        }
        if codec.rowBlockScale?.storage == .globalScales {
            try blockScales!.withUnsafeBytes { try writer.writeSection(seg.section("global_scales"), $0) }
        }
    }
}

/// The first non-finite element each worker met in one segment, in its source rows or in the
/// codes it wrote, and the error that names it.
final class BadElements: @unchecked Sendable {
    private let index: UnsafeMutablePointer<Int>, value: UnsafeMutablePointer<Float>
    private let encodedFlag: UnsafeMutablePointer<Bool>
    private let workers: Int

    init(workers: Int) {
        self.workers = workers
        index = .allocate(capacity: workers); index.initialize(repeating: .max, count: workers)
        value = .allocate(capacity: workers); value.initialize(repeating: 0, count: workers)
        encodedFlag = .allocate(capacity: workers); encodedFlag.initialize(repeating: false, count: workers)
    }

    func deallocate() { index.deallocate(); value.deallocate(); encodedFlag.deallocate() }

    /// Worker `p` found a non-finite source value among `n` floats at `f`, flat index `base`.
    func source(_ p: Int, _ f: UnsafePointer<Float>, _ n: Int, at base: Int) {
        guard let i = NonFinite.first(UnsafeRawPointer(f), dtype: .f32, n), base + i < index[p] else { return }
        index[p] = base + i; value[p] = f[i]; encodedFlag[p] = false
    }

    /// Worker `p` encoded a finite value to a non-finite half-precision code.
    func encoded(_ p: Int, _ f: UnsafePointer<Float>, _ codes: UnsafeRawPointer, _ d: DType, _ n: Int, at base: Int) {
        guard let i = NonFinite.first(codes, dtype: d, n), base + i < index[p] else { return }
        index[p] = base + i; value[p] = f[i]; encodedFlag[p] = f[i].isFinite
    }

    /// Throws for the lowest index any worker noted; segment rows start at `firstRow` of the tensor.
    func check(file: String, tensor: String, scheme: QuantScheme, firstRow: Int, cols: Int) throws(FormatError) {
        var best = 0
        for p in 1..<max(1, workers) where index[p] < index[best] { best = p }
        guard index[best] != .max else { return }
        let at = "[\(firstRow + index[best] / max(1, cols)), \(index[best] % max(1, cols))]"
        if encodedFlag[best] {
            throw FormatError.invalidTensor(file: file, tensor: tensor, message:
                "value \(value[best]) at \(at) is not finite in \(scheme) (largest finite \(scheme == .f16 ? "65504" : "3.39e38")); store this tensor as bf16 or f32")
        }
        throw FormatError.invalidTensor(file: file, tensor: tensor, message:
            "non-finite value \(value[best]) at \(at); `nemo-convert inspect --verify` counts them per tensor")
    }

    /// Scales of finite rows overflow only for ranges beyond Float (max − min of an asymmetric
    /// INT4 group); a non-finite scale would decode the whole row to NaN.
    static func checkScales(_ scales: [Float], file: String, tensor: String, scheme: QuantScheme) throws(FormatError) {
        guard let i = scales.firstIndex(where: { !$0.isFinite }) else { return }
        throw FormatError.invalidTensor(file: file, tensor: tensor, message:
            "\(scheme) scale \(i) is \(scales[i]): the values it covers span more than Float can hold")
    }
}
