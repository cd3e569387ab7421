#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where one converter tensor goes in a GGUF file: which GGUF tensor, its full ggml dimensions,
/// and which slot of it (experts are stacked: expert k of a layer is slot k of `ffn_up_exps`).
/// A model's mapping (`NemotronHGGUF`) says this for every tensor it writes.
public struct GGUFPlacement: Sendable, Equatable {
    public var name: String
    /// ggml `ne` of the whole GGUF tensor (fastest first).
    public var dims: [Int]
    public var slot: Int
    public var slots: Int
    /// A value rewrite done in Float32 as the bytes arrive (`ssm_a` = −exp(A_log)); the tensor must
    /// then be stored as F32.
    public var transform: GGUFValueTransform?
    /// Rows reordered within each of this many heads (`GGUFRowPermutation`): llama.cpp's
    /// converter does it to attention Q and K.
    public var permutedHeads: Int?

    public init(name: String, dims: [Int], slot: Int = 0, slots: Int = 1, transform: GGUFValueTransform? = nil, permutedHeads: Int? = nil) {
        self.name = name; self.dims = dims; self.slot = slot; self.slots = slots; self.transform = transform
        self.permutedHeads = permutedHeads
    }
}

/// llama.cpp's `LlamaModel.permute` of attention Q and K rows: within each head of D rows, row
/// i·D/2 + j goes to 2j + i (the two rotary halves interleaved). Nemotron-H uses no RoPE, so
/// llama.cpp computes the same attention either way (Q and K are permuted alike); it is done to
/// write what llama.cpp's own converter writes, and undone on reading.
public struct GGUFRowPermutation: Sendable, Equatable {
    public let rows: Int
    public let heads: Int
    public init(rows: Int, heads: Int) { self.rows = rows; self.heads = heads }

    /// Where original row `r` is stored.
    @inline(__always)
    public func stored(_ r: Int) -> Int {
        let d = rows / heads, half = d / 2
        let h = r / d, rem = r % d
        return h * d + (rem % half) * 2 + rem / half
    }
}

/// The value rewrites a GGUF mapping can ask for, each with its inverse for reading.
public enum GGUFValueTransform: String, Sendable, Equatable {
    /// x → −exp(x): Mamba's A from A_log.
    case negExp

    /// Applies the rewrite to n Float32 values in place.
    public func apply(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        switch self {
        case .negExp: for i in 0..<n { p[i] = -expf(p[i]) }
        }
    }

    /// The stored value's preimage: an x with apply(x) == y exactly, so a model read back from the
    /// file computes the same A as one that never left the checkpoint. log(−y) can be an ulp off
    /// (expf is not the exact inverse of logf), so the neighbours are tried; nil when none maps
    /// onto y (a value no writer produced, such as a positive A).
    public func invert(_ y: Float) -> Float? {
        switch self {
        case .negExp:
            guard y < 0, y.isFinite else { return nil }
            let x0 = logf(-y)
            var lo = x0, hi = x0
            for _ in 0..<8 {
                if -expf(lo) == y { return lo }
                if -expf(hi) == y { return hi }
                lo = lo.nextDown; hi = hi.nextUp
            }
            return nil
        }
    }
}

/// Writes a GGUF v3 file as a `TensorSink`. GGUF puts every tensor's name, shape, type and offset
/// in the header before the data, so the converter declares all tensors first (`prepare`), which
/// fixes the layout: each GGUF tensor at an offset aligned to 32, stacked experts as slots of one
/// tensor. Data then goes straight to its place in the temporary file (pwrite at the slot's
/// offset, in whatever order the converter produces it), the header is written at the front on
/// `finish`, and the file is fsynced and renamed into place (`AtomicFile`): an error or a signal
/// leaves nothing behind.
///
/// One ggml type per tensor: a segment's `codes` section is stored unchanged — for a ggml block
/// scheme it already is the tensor's blocks, row after row; for f32 / f16 / bf16 it is the
/// elements. Scale sections have no place in GGUF (`rules` keeps schemes that have them out).
public final class GGUFWriter: TensorSink {
    public let path: String
    public let rules: SinkRules
    public private(set) var fileSize = 0
    public var compressedBytesSaved: Int { 0 }

    /// Metadata written into the header, in this order.
    public let metadata: [(key: String, value: GGUFValue)]
    public let alignment = GGUFFile.defaultAlignment
    private let placement: (SinkTensor) throws(FormatError) -> GGUFPlacement
    private let file: AtomicFile

    /// One GGUF tensor of the layout.
    struct Entry {
        let name: String
        let dims: [Int]
        let type: GGMLType
        var offset = 0        // relative to the data area
        let byteCount: Int
        let slots: Int
        var written: [Int]    // bytes written per slot
    }
    private var entries: [Entry] = []
    private var index: [String: Int] = [:]
    /// Converter tensor name → (entry, slot, transform).
    private var slotOf: [String: (entry: Int, slot: Int, transform: GGUFValueTransform?, permutedHeads: Int?)] = [:]
    private var header: [UInt8] = []
    private var dataStart = 0
    private var prepared = false

    // The open tensor and section.
    private var open: (entry: Int, slot: Int, transform: GGUFValueTransform?, permutedHeads: Int?, name: String)?
    private var cursor = 0
    private var sectionOpen = false

    /// The schemes a GGUF tensor can hold: ggml's float types and the block types Quantize encodes.
    public static let storableSchemes: [String: GGMLType] = [
        "f32": .f32, "f16": .f16, "bf16": .bf16,
        "q8_0": .q8_0, "q4_0": .q4_0, "q4_1": .q4_1, "q5_0": .q5_0, "q5_1": .q5_1, "iq4_nl": .iq4_nl,
        "gguf-mxfp4": .mxfp4,
    ]

    /// `placement` maps each converter tensor to its GGUF tensor and slot (it throws for a tensor
    /// the model mapping has no place for).
    public init(path: String, metadata: [(key: String, value: GGUFValue)],
                placement: @escaping (SinkTensor) throws(FormatError) -> GGUFPlacement) throws(FormatError) {
        self.path = path
        self.metadata = metadata
        self.placement = placement
        rules = Self.rules(placement: placement)
        file = try AtomicFile(destination: path)
    }

    /// What a GGUF file stores under a mapping: one of `storableSchemes` per tensor, whole ggml
    /// blocks per row, F32 where the mapping rewrites values, and a place for every tensor.
    public static func rules(placement: @escaping (SinkTensor) throws(FormatError) -> GGUFPlacement) -> SinkRules {
        var r = SinkRules(format: "GGUF file", schemes: Set(storableSchemes.keys), mixedSchemesPerTensor: false, scaleElements: [])
        // Not Sendable-checked: the mapping closures capture only immutable config values.
        nonisolated(unsafe) let place = placement
        r.tensorCheck = { t in
            let p: GGUFPlacement
            do { p = try place(t) } catch { return ["\(error)"] }
            guard let type = storableSchemes[t.scheme] else { return [] }  // reported by the scheme check
            if p.transform != nil && type != .f32 {
                return ["is stored as \(p.name) with its values rewritten (\(p.transform!.rawValue)), which needs f32, not \(t.scheme)"]
            }
            guard p.dims[0] % type.blockSize == 0 else {
                return ["rows of \(p.dims[0]) are not whole \(type.name) blocks of \(type.blockSize); ggml cannot store them (choose another scheme for it)"]
            }
            return []
        }
        return r
    }

    /// The ggml type of a storable scheme.
    public static func ggmlType(scheme: String) -> GGMLType? { storableSchemes[scheme] }

    // MARK: Layout

    public func prepare(_ tensors: [SinkTensor]) throws(FormatError) {
        guard !prepared else { throw FormatError.output(file: path, message: "the GGUF layout was already declared") }
        for t in tensors {
            guard let type = Self.storableSchemes[t.scheme] else {
                throw FormatError.unsupported(file: path, tensor: t.name, message: "scheme \(t.scheme) cannot be stored in a GGUF file")
            }
            let p = try placement(t)
            if let i = index[p.name] {
                let e = entries[i]
                guard e.type == type, e.dims == p.dims, e.slots == p.slots else {
                    throw FormatError.unsupported(file: path, tensor: t.name, message:
                        "stacked into \(p.name) with \(t.scheme) \(p.dims), but another slot of it is \(e.type.name) \(e.dims)")
                }
                slotOf[t.name] = (i, p.slot, p.transform, p.permutedHeads)
            } else {
                guard let rb = type.rowBytes(cols: p.dims[0]) else {
                    throw FormatError.unsupported(file: path, tensor: t.name, message: "rows of \(p.dims[0]) are not whole \(type.name) blocks")
                }
                let rows = p.dims.dropFirst().reduce(1, *)
                index[p.name] = entries.count
                slotOf[t.name] = (entries.count, p.slot, p.transform, p.permutedHeads)
                entries.append(Entry(name: p.name, dims: p.dims, type: type, byteCount: rb * rows, slots: p.slots,
                                     written: [Int](repeating: 0, count: p.slots)))
            }
        }
        var enc = GGUFEncoder()
        for b in GGUFFile.magic { enc.value(.u8(b)) }
        enc.u32(3)
        enc.u64(UInt64(entries.count))
        enc.u64(UInt64(metadata.count))
        for (k, v) in metadata { enc.keyValue(k, v) }
        var off = 0
        for i in entries.indices {
            entries[i].offset = off
            let e = entries[i]
            enc.string(e.name)
            enc.u32(UInt32(e.dims.count))
            for d in e.dims { enc.u64(UInt64(d)) }
            enc.u32(e.type.rawValue)
            enc.u64(UInt64(off))
            off = (off + e.byteCount + alignment - 1) / alignment * alignment
        }
        enc.pad(to: alignment)
        header = enc.bytes
        dataStart = header.count
        fileSize = dataStart + off
        try file.setSize(fileSize)
        prepared = true
    }

    // MARK: TensorSink

    public func beginTensor(_ tensor: SinkTensor) throws(FormatError) {
        guard prepared else { throw FormatError.output(file: path, message: "tensors must be declared (prepare) before data is written") }
        guard let s = slotOf[tensor.name] else {
            throw FormatError.unsupported(file: path, tensor: tensor.name, message: "was not declared for this GGUF file")
        }
        let e = entries[s.entry]
        guard Self.storableSchemes[tensor.scheme] == e.type else {
            throw FormatError.unsupported(file: path, tensor: tensor.name, message: "declared as \(e.type.name), written as \(tensor.scheme)")
        }
        guard e.written[s.slot] == 0 else {
            throw FormatError.unsupported(file: path, tensor: tensor.name, message: "slot \(s.slot) of \(e.name) was already written")
        }
        open = (s.entry, s.slot, s.transform, s.permutedHeads, tensor.name)
        cursor = e.offset + s.slot * (e.byteCount / e.slots)
    }

    public func beginSection(_ name: String, encoding: SectionEncoding) throws(FormatError) {
        guard let o = open else { throw FormatError.output(file: path, message: "section '\(name)' outside a tensor") }
        // Row segments of one scheme follow each other (`z.codes`, `x.codes`, …): their codes concatenate.
        guard name == "codes" || name.hasSuffix(".codes") else {
            throw FormatError.unsupported(file: path, tensor: o.name, message: "section '\(name)' has no place in a GGUF tensor (only codes)")
        }
        sectionOpen = true
    }

    public func appendToSection(_ bytes: UnsafeRawBufferPointer) throws(FormatError) {
        guard let o = open, sectionOpen else { throw FormatError.output(file: path, message: "data outside a section") }
        let e = entries[o.entry]
        let slotEnd = e.offset + (o.slot + 1) * (e.byteCount / e.slots)
        guard cursor + bytes.count <= slotEnd else {
            throw FormatError.unsupported(file: path, tensor: o.name, message: "more bytes than \(e.name)'s \(e.type.name) \(e.dims) hold")
        }
        try Self.checkBlockScales(e.type, bytes, tensor: o.name, file: path)
        if let tr = o.transform {
            let n = bytes.count / 4
            let b = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n))
            defer { b.deallocate() }
            UnsafeMutableRawPointer(b).copyMemory(from: bytes.baseAddress!, byteCount: n * 4)
            tr.apply(b, n)
            try file.write(UnsafeRawBufferPointer(start: b, count: n * 4), at: dataStart + cursor)
        } else if let heads = o.permutedHeads {
            // Whole rows arrive (the converter streams chunks of rows); each goes to its place.
            let slotStart = e.offset + o.slot * (e.byteCount / e.slots)
            let rows = e.dims.dropFirst().reduce(1, *) / e.slots, rowBytes = e.byteCount / e.slots / rows
            let first = cursor - slotStart
            guard first % rowBytes == 0, bytes.count % rowBytes == 0 else {
                throw FormatError.unsupported(file: path, tensor: o.name, message: "a piece of \(bytes.count) bytes is not whole rows of \(rowBytes)")
            }
            let perm = GGUFRowPermutation(rows: rows, heads: heads)
            for k in 0..<(bytes.count / rowBytes) {
                let r = first / rowBytes + k
                try file.write(UnsafeRawBufferPointer(rebasing: bytes[(k * rowBytes)..<((k + 1) * rowBytes)]),
                               at: dataStart + slotStart + perm.stored(r) * rowBytes)
            }
        } else {
            try file.write(bytes, at: dataStart + cursor)
        }
        cursor += bytes.count
    }

    public func endSection() throws(FormatError) { sectionOpen = false }

    @discardableResult
    public func endTensor(attributes: JSONObject) throws(FormatError) -> Int {
        guard let o = open else { throw FormatError.output(file: path, message: "endTensor without a tensor") }
        let e = entries[o.entry]
        let start = e.offset + o.slot * (e.byteCount / e.slots)
        let n = cursor - start
        guard n == e.byteCount / e.slots else {
            throw FormatError.unsupported(file: path, tensor: o.name, message: "wrote \(n) bytes, \(e.name)'s slot holds \(e.byteCount / e.slots)")
        }
        entries[o.entry].written[o.slot] = n
        open = nil
        return n
    }

    public func readBack(tensor: String, section: String) throws(FormatError) -> [UInt8]? {
        guard let s = slotOf[tensor], section == "codes" || section.hasSuffix(".codes") else { return nil }
        // A rewritten tensor (ssm_a) holds F32 values of the source, not what a reader of codes
        // would decode: nil says "the source's values" (TensorSink.readBack).
        if s.transform != nil { return nil }
        let e = entries[s.entry]
        let n = e.byteCount / e.slots
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, n), alignment: 64)
        defer { p.deallocate() }
        try file.read(offset: dataStart + e.offset + s.slot * n, count: n, into: p)
        let stored = UnsafeRawBufferPointer(start: p, count: n)
        guard let heads = s.permutedHeads else { return Array(stored) }
        // Rows back in the converter's order, so sequential calibration sees Q and K as written.
        let rows = e.dims.dropFirst().reduce(1, *) / e.slots, rowBytes = n / rows
        let perm = GGUFRowPermutation(rows: rows, heads: heads)
        var out = [UInt8](repeating: 0, count: n)
        out.withUnsafeMutableBytes { o in
            for r in 0..<rows {
                o.baseAddress!.advanced(by: r * rowBytes).copyMemory(from: p + perm.stored(r) * rowBytes, byteCount: rowBytes)
            }
        }
        return out
    }

    /// GGUF keeps the tokenizer in its metadata (`tokenizer.ggml.*`), not as a file.
    public func addBlob(_ name: String, _ bytes: [UInt8]) throws(FormatError) {}

    public func finish(metadata _: JSONObject) throws(FormatError) {
        guard prepared else { throw FormatError.output(file: path, message: "nothing was declared") }
        for e in entries {
            for (k, w) in e.written.enumerated() where w != e.byteCount / e.slots {
                throw FormatError.output(file: path, message: "GGUF tensor \(e.name)" + (e.slots > 1 ? " slot \(k)" : "") + " was never written")
            }
        }
        let h = UnsafeMutableRawBufferPointer.allocate(byteCount: header.count, alignment: 64)
        defer { h.deallocate() }
        h.copyBytes(from: header)
        try file.write(UnsafeRawBufferPointer(h), at: 0)
        try file.commit()
    }

    public func discard() { file.discard() }

    /// The FP16 scales (and minimums) of ggml blocks must be finite: a weight beyond what the
    /// format's scale can express (|w| > ~5e5 for q4_0: d = max/−8 overflows half) would give
    /// blocks of inf/NaN that llama.cpp reads as such. Refused here, naming the tensor and block.
    static func checkBlockScales(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, tensor: String, file: String) throws(FormatError) {
        let halves: Int
        switch type {
        case .q4_0, .q5_0, .q8_0, .iq4_nl: halves = 1
        case .q4_1, .q5_1: halves = 2
        default: return
        }
        let ts = type.typeSize
        let n = bytes.count / ts
        for b in 0..<n {
            for h in 0..<halves {
                let bits = UInt16(bytes[b * ts + 2 * h]) | UInt16(bytes[b * ts + 2 * h + 1]) << 8
                // Exponent all ones: inf or NaN.
                if bits & 0x7C00 == 0x7C00 {
                    throw FormatError.invalidTensor(file: file, tensor: tensor, message:
                        "block \(b) of this piece has a non-finite FP16 \(h == 0 ? "scale" : "minimum") (weights too large for \(type.name)); keep the tensor in f32/bf16")
                }
            }
        }
    }
}
