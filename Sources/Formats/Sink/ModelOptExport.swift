/// Hugging Face export in NVIDIA ModelOpt's unified layout (`export_hf_checkpoint`), what NVIDIA's
/// own Nemotron 3 Nano FP8 and NVFP4 releases use and vLLM, TensorRT-LLM and SGLang load. Learned
/// from ModelOpt's public code (modelopt/torch/export: `quant_utils.py` `get_weight_scaling_factor`,
/// `get_activation_scaling_factor`, `postprocess_state_dict`, `process_layer_quant_config`;
/// `convert_hf_config.py` `convert_hf_quant_config_format`; `qtensor/nvfp4_tensor.py`) and
/// NVIDIA's published Nemotron-3-Nano hf_quant_config.json; re-expressed here:
///
/// - **FP8** (`fp8-tensor`): `M.weight` F8_E4M3 [out, in]; `M.weight_scale` F32 [] (one per tensor,
///   so per expert for routed experts); value = e4m3(code) × weight_scale.
/// - **NVFP4** (`nvfp4`): `M.weight` U8 [out, in/2], two E2M1 codes a byte, low nibble the even
///   column (our codec's bytes as they are); `M.weight_scale` F8_E4M3 [out, in/16];
///   `M.weight_scale_2` F32 []; value = e2m1(code) × e4m3(block scale) × weight_scale_2.
/// - **`M.input_scale`** F32 [] beside every quantized weight: the static activation scale,
///   amax / 448 (FP8) or amax / (6 · 448) (NVFP4), amax being the largest input magnitude
///   calibration saw. Runtimes read it for every quantized linear layer, so it is never guessed:
///   without calibration (or a quantized source's own scale) the export is refused.
/// - **FP8 KV cache** (`kvCacheFP8`): `…k_proj.k_scale` and `…v_proj.v_scale` F32 [] per
///   attention layer, max(amax / 448, 1) of the K and V projections' calibrated outputs — ModelOpt
///   clamps FP8 KV scales to at least 1.
/// - Everything else keeps its name and the dtype the plan gives it (source dtypes; the router in
///   F32). Linear modules kept in high precision, lm_head and the conv1d modules are listed in
///   `exclude_modules`, lm_head first, the rest in model order (the order of NVIDIA's published
///   Nano file).
///
/// ModelOpt's FP8 and NVFP4 hold one scale (FP8) or second-level scale (NVFP4) per tensor: a plan
/// with several scales in one tensor (per-SSM-head scales, in_proj segments of their own) cannot be
/// stored, nor can FP8 per-channel scales, other schemes, or an NVFP4 row that is not whole blocks
/// of 16. Those are refused at plan time, naming the reason; nothing is expanded.
public struct ModelOptExport: HFExportLayout {
    /// Declares an FP8 KV cache (`kv_cache_quant_algo: "FP8"`) and writes `k_scale` / `v_scale`.
    public var kvCacheFP8: Bool
    /// The ModelOpt version whose layout this reproduces, written as the producer (runtimes check
    /// the producer's name); `exporter` names the program that actually wrote the files.
    public static let layoutVersion = "0.29.0"
    public var exporter: JSONValue

    public init(kvCacheFP8: Bool = false, exporter: JSONValue = ["name": "nemo-convert"]) {
        self.kvCacheFP8 = kvCacheFP8
        self.exporter = exporter
    }

    public static let fp8Max: Float = 448
    public static let nvfp4Max: Float = 6 * 448

    public var rules: SinkRules {
        SinkRules(format: "ModelOpt export", schemes: ["bf16", "f16", "f32", "fp8-tensor", "nvfp4"], mixedSchemesPerTensor: false,
                  tensorCheck: { t in
            var why: [String] = []
            let quantized = t.segments.filter { HFScheme($0.scheme) == .fp8(perTensor: true) || HFScheme($0.scheme) == .nvfp4 }
            if !quantized.isEmpty && t.segments.count > 1 {
                why.append("\(t.segments.count) row segments with a scale each (\(t.segments.map(\.name).joined(separator: ", "))); ModelOpt stores one weight_scale (FP8) or weight_scale_2 (NVFP4) per tensor — set \"per_head_scales\": false")
            }
            if quantized.contains(where: { HFScheme($0.scheme) == .nvfp4 }) {
                let cols = t.shape.count >= 2 ? t.shape.dropFirst().reduce(1, *) : (t.shape.first ?? 1)
                if t.shape.count < 2 || cols % 16 != 0 {
                    why.append("nvfp4: row width \(cols) is not whole blocks of 16 (ModelOpt's NVFP4 has no partial block)")
                }
            }
            return why
        })
    }

    public func plan(_ t: SinkTensor) throws(FormatError) -> HFTensorPlan {
        let cols = t.shape.count >= 2 ? t.shape.dropFirst().reduce(1, *) : (t.shape.first ?? 1)
        let rows = t.shape.first ?? 1
        switch HFScheme(t.segments.first?.scheme ?? t.scheme) {
        case .float(let d): return .verbatim(TensorDeclaration(name: t.name, dtype: d, shape: t.shape))
        case .fp8(perTensor: true): return .verbatim(TensorDeclaration(name: t.name, dtype: .f8e4m3, shape: [rows, cols]))
        case .nvfp4: return .verbatim(TensorDeclaration(name: t.name, dtype: .u8, shape: [rows, cols / 2]))
        default:
            throw FormatError.unsupported(file: t.name, tensor: t.name, message: "scheme \(t.scheme) has no ModelOpt layout")
        }
    }

    public func sideTensors(_ t: SinkTensor, plan: HFTensorPlan, segments: [HFSegment],
                            sections: [String: [UInt8]], attributes: JSONObject) throws(FormatError) -> [(TensorDeclaration, [UInt8])] {
        let stem = Self.module(of: t.name)
        var out: [(TensorDeclaration, [UInt8])] = []
        let scheme = HFScheme(segments.first?.scheme ?? t.scheme)
        let section = { (what: String) -> [UInt8] in sections[segments.first.map { $0.name.isEmpty ? what : "\($0.name).\(what)" } ?? what] ?? [] }
        switch scheme {
        case .fp8(perTensor: true):
            let s = section("scales")
            try expect(s.count, 4, t, "scales (one Float32 per tensor)")
            out.append((TensorDeclaration(name: stem + ".weight_scale", dtype: .f32, shape: []), s))
            out.append(try inputScale(t, attributes, max: Self.fp8Max))
        case .nvfp4:
            let rows = t.shape.first ?? 1, cols = t.shape.dropFirst().reduce(1, *)
            let s = section("scales"), g = section("global_scales")
            try expect(s.count, rows * cols / 16, t, "scales (one E4M3 per 16 columns)")
            try expect(g.count, 4, t, "global_scales (one Float32 per tensor)")
            out.append((TensorDeclaration(name: stem + ".weight_scale", dtype: .f8e4m3, shape: [rows, cols / 16]), s))
            out.append((TensorDeclaration(name: stem + ".weight_scale_2", dtype: .f32, shape: []), g))
            out.append(try inputScale(t, attributes, max: Self.nvfp4Max))
        default: break
        }
        if kvCacheFP8, t.role == .attnK || t.role == .attnV {
            let name = stem + (t.role == .attnK ? ".k_scale" : ".v_scale")
            let value: Float
            if let s = attributes["source_kv_scale"]?.doubleValue {
                value = Float(s)
            } else if let m = attributes["output_absmax"]?.doubleValue {
                // ModelOpt (postprocess_state_dict): amax / 448, at least 1 for an FP8 KV cache.
                value = Swift.max(Float(m) / Self.fp8Max, 1)
            } else {
                throw FormatError.invalidTensor(file: t.name, tensor: name, message:
                    "an FP8 KV cache needs the calibrated range of this projection's outputs: convert with --calib FILE (statistics files written before nemo-convert recorded K/V ranges have none)")
            }
            out.append((TensorDeclaration(name: name, dtype: .f32, shape: []), Self.bytes(value)))
        }
        return out
    }

    /// `input_scale`: a quantized source's own (rescaled if it was made for the other format),
    /// else amax / `max` from calibration; never a guess.
    private func inputScale(_ t: SinkTensor, _ a: JSONObject, max: Float) throws(FormatError) -> (TensorDeclaration, [UInt8]) {
        let name = Self.module(of: t.name) + ".input_scale"
        let value: Float
        if let s = a["source_input_scale"]?.doubleValue, let m = a["source_input_scale_max"]?.doubleValue {
            value = Float(m) == max ? Float(s) : Float(s) * Float(m) / max
        } else if let amax = a["input_absmax"]?.doubleValue {
            guard amax > 0, amax.isFinite else {
                throw FormatError.invalidTensor(file: t.name, tensor: name, message:
                    "calibration saw input magnitude \(amax) for this weight; a static input scale must be positive (more calibration text?)")
            }
            value = Float(amax) / max
        } else {
            throw FormatError.invalidTensor(file: t.name, tensor: name, message:
                "no static input scale: ModelOpt FP8/NVFP4 checkpoints carry one for every quantized layer (runtimes read it), and it comes from calibration: convert with --calib FILE or --stats FILE")
        }
        return (TensorDeclaration(name: name, dtype: .f32, shape: []), Self.bytes(value))
    }

    static func bytes(_ v: Float) -> [UInt8] { withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }

    private func expect(_ got: Int, _ want: Int, _ t: SinkTensor, _ what: String) throws(FormatError) {
        guard got == want else {
            throw FormatError.invalidTensor(file: t.name, tensor: t.name, message: "\(what): \(got) bytes, expected \(want)")
        }
    }

    /// ModelOpt's name of a scheme (`quant_algo`), nil for high precision.
    public static func algorithm(_ scheme: String) -> String? {
        switch HFScheme(scheme) {
        case .fp8(perTensor: true): return "FP8"
        case .nvfp4: return "NVFP4"
        default: return nil
        }
    }

    public func finish(written: [HFWrittenTensor]) throws(FormatError) -> (quantizationConfig: JSONValue?, files: [(String, [UInt8])]) {
        var exclude: [String] = []
        var quantized: [(module: String, algo: String)] = []
        for w in written {
            let m = Self.module(of: w.tensor.name)
            if let a = Self.algorithm(w.scheme) { quantized.append((m, a)); continue }
            // Modules a ModelOpt quantizer wraps (linear layers, conv1d) that stayed high precision;
            // parameters (norms, A_log, D, dt_bias, biases) and embeddings are never listed.
            let listed = (w.tensor.role.isLinear && w.tensor.role != .embedding) || w.tensor.role == .mambaConvWeight
            if listed, !exclude.contains(m) { exclude.append(m) }
        }
        guard !quantized.isEmpty else {
            throw FormatError.unsupported(file: "hf_quant_config.json", tensor: nil, message:
                "nothing is quantized to FP8 or NVFP4; a ModelOpt checkpoint needs at least one quantized layer (use --format packed for a high-precision copy)")
        }
        if let i = exclude.firstIndex(of: "lm_head"), i > 0 { exclude.remove(at: i); exclude.insert("lm_head", at: 0) }
        let algos = Set(quantized.map(\.algo))
        let kv: JSONValue = kvCacheFP8 ? "FP8" : .null
        let producer: JSONValue = ["name": "modelopt", "version": .string(Self.layoutVersion)]
        // hf_quant_config.json, key for key as ModelOpt writes it (process_layer_quant_config).
        var q: JSONObject
        if algos.count == 1, let algo = algos.first {
            q = ["quant_algo": .string(algo), "kv_cache_quant_algo": kv]
            if algo == "NVFP4" { q["group_size"] = 16 }
            q["exclude_modules"] = .array(exclude.map { .string($0) })
        } else {
            var layers = JSONObject()
            for (m, a) in quantized { layers[m] = a == "NVFP4" ? ["quant_algo": "NVFP4", "group_size": 16] : ["quant_algo": "FP8"] }
            q = ["quant_algo": "MIXED_PRECISION", "kv_cache_quant_algo": kv, "quantized_layers": .object(layers)]
        }
        let side: JSONValue = ["producer": producer, "quantization": .object(q), "exporter": exporter]
        // config.json's quantization_config: convert_hf_quant_config_format's translation.
        var c = JSONObject()
        if algos.count == 1, let algo = algos.first {
            let bits: JSONValue = algo == "NVFP4" ? 4 : 8
            var args: JSONObject = ["dynamic": false, "num_bits": bits, "type": "float"]
            if algo == "NVFP4" { args["group_size"] = 16 }
            c["config_groups"] = ["group_0": ["input_activations": .object(args), "weights": .object(args), "targets": ["Linear"]]]
            c["ignore"] = .array(exclude.map { .string($0) })
        } else {
            c["ignore"] = .array(exclude.map { .string($0) })
            c["quantized_layers"] = q["quantized_layers"]
        }
        c["quant_algo"] = .string(algos.count == 1 ? algos.first! : "MIXED_PRECISION")
        if kvCacheFP8 { c["kv_cache_scheme"] = ["dynamic": false, "num_bits": 8, "type": "float"] }
        c["producer"] = producer
        c["quant_method"] = "modelopt"
        return (.object(c), [("hf_quant_config.json", JSONWriter.bytes(side, options: .init(pretty: true)) + [0x0A])])
    }
}
