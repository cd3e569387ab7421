/// Hugging Face export in the compressed-tensors layout (`quant_method: "compressed-tensors"`),
/// what llm-compressor writes and vLLM and transformers load. Layouts, as the compressed-tensors
/// library (0.20.1) defines them — `PackedQuantizationCompressor` with `pack_to_int32`,
/// `FloatQuantizationCompressor`, `QuantizationArgs` — re-expressed here:
///
/// - **pack-quantized** (W4A16, W8A16; `int4-gG-sym|asym`, `int8`): `M.weight_packed` I32
///   [out, ceil(in·b/32)]: element j of a row at bits b·j of the row's little-endian words, as the
///   unsigned value `code + 2^(b−1)` (compressed-tensors' codes are signed, −8…7 / −128…127); a row
///   ends in zero bits. Our symmetric INT4 nibble (two's complement) is stored XOR 8, our INT8 byte
///   XOR 0x80; our asymmetric INT4 code q (0…15, value (q − z)·s) is compressed-tensors' q − 8 with
///   zero point z − 8, so both are stored as they are. `M.weight_scale` [out, groups] (group) or
///   [out, 1] (channel), `M.weight_zero_point` I32 [ceil(out·4/32), groups] (asymmetric: zero
///   points packed along the output dimension), `M.weight_shape` I64 [2].
/// - **float-quantized** (FP8 W8A8, `fp8-tensor` / `fp8-channel`): `M.weight` F8_E4M3 [out, in],
///   `M.weight_scale` F32 [out, 1] (channel strategy). A per-tensor scale, and our per-SSM-head and
///   per-expert ones, are expanded to one per row: lossless, and one config group serves every
///   FP8 tensor. Activations are dynamic per token (no static `input_scale` without calibration).
///
/// Scales are stored in Float32, exactly our codec's: compressed-tensors dequantizes with the
/// scale's own dtype (`x_q.to(scale.dtype) * scale`), so a float32 load reproduces our values bit
/// for bit; a runtime that loads the model in BF16 rounds scales to BF16 on load (vLLM casts each
/// parameter to the model dtype), which changes each value by at most 2^−9 relative.
///
/// Groups must divide the row (compressed-tensors refuses a partial group), and one tensor holds
/// one scheme: Mamba in_proj's dt rows cannot stay BF16 inside a quantized in_proj, so the
/// built-in recipes quantize in_proj whole for this format and a plan that mixes is refused at plan
/// time. High-precision tensors keep their names and dtypes; linear ones are listed in `ignore`.
public struct CompressedTensorsExport: HFExportLayout {
    public init() {}

    /// The INT4 group sizes written (what vLLM's Marlin/Machete kernels take; compressed-tensors
    /// itself takes any divisor).
    public static let int4Groups = [32, 64, 128]

    public var rules: SinkRules {
        var schemes: Set<String> = ["bf16", "f16", "f32", "int8", "fp8-tensor", "fp8-channel"]
        for g in Self.int4Groups { schemes.insert("int4-g\(g)-sym"); schemes.insert("int4-g\(g)-asym") }
        return SinkRules(format: "compressed-tensors export", schemes: schemes, mixedSchemesPerTensor: false,
                         tensorCheck: { t in
            let rows = t.shape.first ?? 1, cols = rows == 0 ? 0 : t.shape.reduce(1, *) / rows
            let schemes = t.segments.map(\.scheme)
            var why: [String] = []
            for s in Set(schemes) {
                if HFScheme(s) == .nvfp4 {
                    why.append("nvfp4: compressed-tensors divides by its global scale (value q·s/gs), which cannot hold our q·s·g bit for bit")
                }
                if case .int4(let g, _) = HFScheme(s), cols % g != 0 {
                    why.append("\(s): group \(g) does not divide the row width \(cols) (compressed-tensors has no partial groups)")
                }
            }
            return why
        })
    }

    public func plan(_ t: SinkTensor) throws(FormatError) -> HFTensorPlan {
        let stem = Self.module(of: t.name)
        let (rows, cols) = (t.shape.first ?? 1, t.shape.count >= 2 ? t.shape.dropFirst().reduce(1, *) : (t.shape.first ?? 1))
        switch HFScheme(t.segments.first?.scheme ?? t.scheme) {
        case .float(let d):
            return .verbatim(TensorDeclaration(name: t.name, dtype: d, shape: t.shape))
        case .fp8:
            return .verbatim(TensorDeclaration(name: t.name, dtype: .f8e4m3, shape: [rows, cols]))
        case .int4(_, let symmetric):
            let words = (cols + 7) / 8, src = (cols + 1) / 2
            let flip: UInt8 = symmetric ? 0x88 : 0
            let oddMask: UInt8 = cols % 2 == 1 ? 0x0F : 0xFF
            return HFTensorPlan(main: TensorDeclaration(name: stem + ".weight_packed", dtype: .i32, shape: [rows, words]),
                                sourceRowBytes: src, storedRowBytes: words * 4) { i, o in
                let a = i.assumingMemoryBound(to: UInt8.self), b = o.assumingMemoryBound(to: UInt8.self)
                for k in 0..<src { b[k] = a[k] ^ flip }
                // An odd row's last byte holds one code; the unused nibble is zero, as pack_to_int32 pads.
                if cols % 2 == 1 { b[src - 1] &= oddMask }
                for k in src..<(words * 4) { b[k] = 0 }
            }
        case .int8:
            let words = (cols + 3) / 4
            return HFTensorPlan(main: TensorDeclaration(name: stem + ".weight_packed", dtype: .i32, shape: [rows, words]),
                                sourceRowBytes: cols, storedRowBytes: words * 4) { i, o in
                let a = i.assumingMemoryBound(to: UInt8.self), b = o.assumingMemoryBound(to: UInt8.self)
                for k in 0..<cols { b[k] = a[k] ^ 0x80 }
                for k in cols..<(words * 4) { b[k] = 0 }
            }
        case .nvfp4, .other:
            throw FormatError.unsupported(file: t.name, tensor: t.name, message: "scheme \(t.scheme) has no compressed-tensors layout here")
        }
    }

    public func sideTensors(_ t: SinkTensor, plan: HFTensorPlan, segments: [HFSegment],
                            sections: [String: [UInt8]], attributes: JSONObject) throws(FormatError) -> [(TensorDeclaration, [UInt8])] {
        let stem = Self.module(of: t.name)
        let rows = t.shape.first ?? 1, cols = t.shape.count >= 2 ? t.shape.dropFirst().reduce(1, *) : rows
        func joined(_ what: String) -> [UInt8] {
            segments.flatMap { sections[$0.name.isEmpty ? what : "\($0.name).\(what)"] ?? [] }
        }
        func shapeTensor() -> (TensorDeclaration, [UInt8]) {
            var b: [UInt8] = []
            for v in [Int64(rows), Int64(cols)] { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
            return (TensorDeclaration(name: stem + ".weight_shape", dtype: .i64, shape: [2]), b)
        }
        switch HFScheme(segments.first?.scheme ?? t.scheme) {
        case .float: return []
        case .int4(let g, let symmetric):
            let groups = (cols + g - 1) / g
            let scales = joined("scales")
            try expect(scales.count, rows * groups * 4, t, "scales")
            var out = [(TensorDeclaration(name: stem + ".weight_scale", dtype: .f32, shape: [rows, groups]), scales), shapeTensor()]
            if !symmetric {
                let z = joined("zero_points")
                try expect(z.count, rows * groups, t, "zero_points")
                out.append((TensorDeclaration(name: stem + ".weight_zero_point", dtype: .i32, shape: [(rows + 7) / 8, groups]),
                            Self.packAlongRows(z, rows: rows, groups: groups)))
            }
            return out
        case .int8:
            let scales = joined("scales")
            try expect(scales.count, rows * 4, t, "scales")
            return [(TensorDeclaration(name: stem + ".weight_scale", dtype: .f32, shape: [rows, 1]), scales), shapeTensor()]
        case .fp8:
            // One Float32 per row: per-channel scales as they are, per-tensor and per-block ones repeated.
            var perRow: [UInt8] = []
            perRow.reserveCapacity(rows * 4)
            for s in segments {
                let b = sections[s.name.isEmpty ? "scales" : "\(s.name).scales"] ?? []
                let n = s.rows.count
                if HFScheme(s.scheme) == .fp8(perTensor: false) {
                    try expect(b.count, n * 4, t, "scales of segment '\(s.name)'")
                    perRow += b
                } else {
                    let block = max(1, s.blockRows ?? n), blocks = (n + block - 1) / block
                    try expect(b.count, blocks * 4, t, "scales of segment '\(s.name)'")
                    for r in 0..<n { perRow += b[((r / block) * 4)..<((r / block) * 4 + 4)] }
                }
            }
            try expect(perRow.count, rows * 4, t, "scales")
            return [(TensorDeclaration(name: stem + ".weight_scale", dtype: .f32, shape: [rows, 1]), perRow)]
        case .nvfp4, .other:
            throw FormatError.unsupported(file: t.name, tensor: t.name, message: "scheme \(t.scheme) has no compressed-tensors layout here")
        }
    }

    /// compressed-tensors packs asymmetric zero points along the output dimension
    /// (`pack_to_int32(zp, bits, packed_dim=0)`): word [r/8, g] holds rows r…r+7 of group g, row r
    /// at bits 4·(r mod 8), each as the unsigned value z (= its signed z − 8, plus 8).
    static func packAlongRows(_ z: [UInt8], rows: Int, groups: Int) -> [UInt8] {
        let wordRows = (rows + 7) / 8
        var words = [UInt32](repeating: 0, count: wordRows * groups)
        for r in 0..<rows {
            for g in 0..<groups { words[(r / 8) * groups + g] |= UInt32(z[r * groups + g] & 0x0F) << (4 * (r % 8)) }
        }
        var out: [UInt8] = []
        out.reserveCapacity(words.count * 4)
        for w in words { withUnsafeBytes(of: w.littleEndian) { out += $0 } }
        return out
    }

    private func expect(_ got: Int, _ want: Int, _ t: SinkTensor, _ what: String) throws(FormatError) {
        guard got == want else {
            throw FormatError.invalidTensor(file: t.name, tensor: t.name, message: "\(what): \(got) bytes, expected \(want)")
        }
    }

    public func finish(written: [HFWrittenTensor]) throws(FormatError) -> (quantizationConfig: JSONValue?, files: [(String, [UInt8])]) {
        // One config group per scheme, targeting its modules by name: explicit, so no runtime's
        // matching order matters (out_proj's INT4 groups follow heads, lm_head may be INT8, …).
        var groups: [(scheme: String, modules: [String])] = []
        var ignore: [String] = []
        for w in written {
            let m = Self.module(of: w.tensor.name)
            switch HFScheme(w.scheme) {
            case .float:
                if w.tensor.role.isLinear { ignore.append(m) }
            default:
                if let i = groups.firstIndex(where: { $0.scheme == w.scheme }) { groups[i].modules.append(m) }
                else { groups.append((w.scheme, [m])) }
            }
        }
        var cg = JSONObject()
        var formats = Set<String>()
        for (i, g) in groups.enumerated() {
            let (weights, input, format) = Self.args(g.scheme)
            formats.insert(format)
            cg["group_\(i)"] = ["targets": .array(g.modules.map { .string($0) }), "weights": weights,
                                "input_activations": input, "output_activations": .null, "format": .string(format)]
        }
        let q: JSONValue = [
            "quant_method": "compressed-tensors",
            "format": .string(formats.count == 1 ? formats.first! : "mixed-precision"),
            "quantization_status": "compressed",
            "config_groups": .object(cg),
            "ignore": .array(ignore.map { .string($0) }),
            "kv_cache_scheme": .null,
            "global_compression_ratio": .null,
            "sparsity_config": [:],
            "version": "0.20.1",
        ]
        return (q, [])
    }

    /// `QuantizationArgs` of a scheme's weights (and activations), and its compression format.
    static func args(_ scheme: String) -> (JSONValue, JSONValue, String) {
        // The keys compressed-tensors itself serializes (it omits null block_structure, actorder,
        // scale_dtype, observer and zp_dtype).
        func weights(bits: Int, type: String, symmetric: Bool, strategy: String, group: Int?) -> JSONValue {
            ["num_bits": .int(bits), "type": .string(type), "symmetric": .bool(symmetric), "group_size": group.map { .int($0) } ?? .null,
             "strategy": .string(strategy), "dynamic": false]
        }
        switch HFScheme(scheme) {
        case .int4(let g, let sym): return (weights(bits: 4, type: "int", symmetric: sym, strategy: "group", group: g), .null, "pack-quantized")
        case .int8: return (weights(bits: 8, type: "int", symmetric: true, strategy: "channel", group: nil), .null, "pack-quantized")
        default:
            let input: JSONValue = ["num_bits": 8, "type": "float", "symmetric": true, "group_size": .null, "strategy": "token",
                                    "dynamic": true]
            return (weights(bits: 8, type: "float", symmetric: true, strategy: "channel", group: nil), input, "float-quantized")
        }
    }
}
