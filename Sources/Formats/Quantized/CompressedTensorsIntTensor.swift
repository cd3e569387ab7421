/// A compressed-tensors `pack-quantized` weight (`CompressedTensorsLayout`): b-bit integer codes
/// (b = 4 or 8) packed densely into the little-endian int32 words of each row, element j at bits
/// b·j as the unsigned value code + 2^(b−1); a scale per group of columns or per row; for
/// asymmetric schemes a zero point per group, packed along the output dimension.
/// value = (code − zero) × scale, in Float32 from the stored scale (what a float32 load of
/// compressed-tensors computes: `x_q.to(scale.dtype) * scale`).
public struct CompressedTensorsIntTensor: EncodedTensor {
    public let name: String
    public let packed: TensorView
    public let bits: Int
    public let group: Int
    public let shape: [Int]
    /// Scales as Float32, [rows, groups].
    let scales: [Float]
    /// Zero points as signed values, [rows, groups]; nil when symmetric.
    let zeros: [Int8]?
    let sideBytes: Int
    let sideHash: UInt64

    init(name: String, packed: TensorView, scale: TensorView, shape: TensorView, zeroPoint: TensorView?) throws(FormatError) {
        let stem = String(name.dropLast("weight_packed".count))
        func bad(_ t: String, _ m: String, _ v: TensorView) -> FormatError { .invalidTensor(file: v.path, tensor: t, message: m) }
        guard packed.dtype == .i32, packed.shape.count == 2 else {
            throw bad(name, "\(packed.dtype.rawValue) \(packed.shape); expected I32 [rows, words]", packed)
        }
        guard (shape.dtype == .i64 || shape.dtype == .i32), shape.elementCount == 2 else {
            throw bad(stem + "weight_shape", "\(shape.dtype.rawValue) \(shape.shape); expected two integers [rows, cols]", shape)
        }
        let dims: [Int] = shape.dtype == .i64
            ? shape.bytes.withMemoryRebound(to: Int64.self) { $0.map { Int(Int64(littleEndian: $0)) } }
            : shape.bytes.withMemoryRebound(to: Int32.self) { $0.map { Int(Int32(littleEndian: $0)) } }
        let rows = packed.shape[0], words = packed.shape[1]
        guard dims[0] == rows, dims[1] > 0 else {
            throw bad(stem + "weight_shape", "says \(dims) for a packed weight of \(rows) rows", shape)
        }
        let cols = dims[1]
        if words == (cols * 4 + 31) / 32 { bits = 4 } else if words == (cols * 8 + 31) / 32 { bits = 8 } else {
            throw bad(name, "\(words) words a row fit neither 4- nor 8-bit codes of \(cols) columns (weight_shape \(dims))", packed)
        }
        let sv = try positiveScales(scale, name: stem + "weight_scale")
        let groups: Int
        switch scale.shape {
        case [rows, 1], [rows]: groups = 1
        case let s where s.count == 2 && s[0] == rows && s[1] > 0 && cols % s[1] == 0: groups = s[1]
        default:
            throw bad(stem + "weight_scale", "shape \(scale.shape) is neither per channel ([\(rows), 1]) nor per group ([\(rows), G] with G dividing \(cols)) for \(name)", scale)
        }
        group = cols / groups
        scales = sv
        if let z = zeroPoint {
            let nb = bits
            let zRows = (rows * nb + 31) / 32
            guard z.dtype == .i32, z.shape == [zRows, groups] else {
                throw bad(stem + "weight_zero_point", "\(z.dtype.rawValue) \(z.shape); expected I32 [\(zRows), \(groups)] (packed along rows)", z)
            }
            var zs = [Int8](repeating: 0, count: rows * groups)
            let per = 32 / nb, mask = UInt32((1 << nb) - 1)
            z.bytes.withMemoryRebound(to: UInt32.self) { w in
                for r in 0..<rows {
                    for g in 0..<groups {
                        let v = (UInt32(littleEndian: w[(r / per) * groups + g]) >> UInt32(nb * (r % per))) & mask
                        zs[r * groups + g] = Int8(truncatingIfNeeded: Int(v) - (1 << (nb - 1)))
                    }
                }
            }
            zeros = zs
        } else {
            zeros = nil
        }
        self.name = String(stem) + "weight"
        self.packed = packed
        self.shape = [rows, cols]
        sideBytes = scale.info.byteCount + shape.info.byteCount + (zeroPoint?.info.byteCount ?? 0)
        var h = XXH64.hash(scale.bytes)
        if let z = zeroPoint { h = XXH64.hash(z.bytes, seed: h) }
        sideHash = h
    }

    public var path: String { packed.path }
    public var codeDType: DType { .i32 }
    public var byteCount: Int { packed.info.byteCount + sideBytes }
    public var storageDescription: String {
        "INT\(bits) packed in I32 × weight_scale \(group == shape[1] ? "per channel" : "per \(group) columns")\(zeros != nil ? " − zero point" : "") (compressed-tensors)"
    }

    public func decodeRows(_ rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws(FormatError) {
        let cols = shape[1], rowBytes = packed.shape[1] * 4, groups = cols / group, g = group
        let offset = 1 << (bits - 1)
        let b = packed.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        // One scale and zero point per group, hoisted; the inner loops are branch-free over bytes.
        for (i, r) in rows.enumerated() {
            let o = out + i * cols, row = b + r * rowBytes
            for k in 0..<groups {
                let s = scales[r * groups + k], z = Float(offset + Int(zeros?[r * groups + k] ?? 0))
                let j0 = k * g
                if bits == 8 {
                    for j in j0..<(j0 + g) { o[j] = (Float(row[j]) - z) * s }
                } else {
                    // A group starts on an even column unless g is odd; then fall back to one nibble at a time.
                    if g % 2 == 0 {
                        for p in (j0 / 2)..<((j0 + g) / 2) {
                            let byte = row[p]
                            o[2 * p] = (Float(byte & 0x0F) - z) * s
                            o[2 * p + 1] = (Float(byte >> 4) - z) * s
                        }
                    } else {
                        for j in j0..<(j0 + g) {
                            let byte = row[j / 2]
                            o[j] = (Float(j % 2 == 0 ? byte & 0x0F : byte >> 4) - z) * s
                        }
                    }
                }
            }
        }
    }

    public func contentHash() -> UInt64 { XXH64.hash(packed.bytes, seed: sideHash) }
    public func dontNeed() { packed.file.dontNeed(offset: packed.info.offset, count: packed.info.byteCount) }

    /// The codes in our codecs' layout, so converting to the same scheme copies them: INT4 as
    /// u4x2 (two's complement when symmetric, 0…15 with u8 zero points when not), INT8 as i8.
    public var integerCodes: IntegerCodes? {
        IntegerCodes(bits: bits, group: group, symmetric: zeros == nil, cols: shape[1], scales: scales,
                     zeroPoints: zeros.map { $0.map { UInt8(truncatingIfNeeded: Int($0) + 8) } }) { [packed, bits, shape] r, out in
            let cols = shape[1], rowBytes = packed.shape[1] * 4, b = packed.bytes, base = r * rowBytes
            if bits == 8 {
                for j in 0..<cols { out[j] = b[base + j] ^ 0x80 }
            } else {
                let n = (cols + 1) / 2, flip: UInt8 = self.zeros == nil ? 0x88 : 0
                for k in 0..<n { out[k] = b[base + k] ^ flip }
                if cols % 2 == 1 { out[n - 1] &= 0x0F }
            }
        }
    }
}

/// Integer codes and scales an input stores in a form our INT4/INT8 codecs store unchanged
/// (`Converter+CodeCopy`): row r's codes in the codec's layout via `row`, one Float32 scale per
/// group (per row for INT8), u8 zero points for asymmetric INT4.
public struct IntegerCodes: @unchecked Sendable {
    public let bits: Int
    public let group: Int
    public let symmetric: Bool
    public let cols: Int
    public let scales: [Float]
    public let zeroPoints: [UInt8]?
    /// Writes row r's codes (ceil(cols/2) bytes for INT4, cols for INT8) to the buffer.
    public let row: (Int, UnsafeMutablePointer<UInt8>) -> Void
}
