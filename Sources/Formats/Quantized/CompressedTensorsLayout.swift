/// compressed-tensors checkpoints (`quant_method: "compressed-tensors"`, what llm-compressor and
/// nemo-convert's `--format compressed-tensors` write), read as `CompressedTensorsExport`
/// describes the layouts:
///
/// - `pack-quantized`: `M.weight_packed` I32, `M.weight_scale` [out, groups] or [out, 1],
///   `M.weight_shape` [2], and for asymmetric schemes `M.weight_zero_point` I32 packed along the
///   output dimension → `CompressedTensorsIntTensor`. Bits, group size and symmetry are read from
///   the tensors' shapes and checked against the config group's `weights`.
/// - `float-quantized` (FP8): `M.weight` F8_E4M3 with `M.weight_scale` per tensor or per channel
///   → the same decoder as ModelOpt FP8 (e4m3(code) × scale), so converting to `fp8-channel`
///   copies codes and scales.
/// - BF16/F16/F32 weights without scales are read as they are (`ignore`d modules).
///
/// `input_scale` and KV-cache scales are the runtime's. Formats, quantization types or scale
/// layouts this reader does not know are refused naming them (`nvfp4-pack-quantized`, act-order
/// `weight_g_idx`, block strategies, …).
public struct CompressedTensorsLayout: QuantizedLayout {
    public let format: String
    public let version: String?
    public let declaredIn: String

    /// The compression formats read; others are refused at detection.
    static let formats: Set<String> = ["pack-quantized", "float-quantized", "naive-quantized", "mixed-precision", "dense"]

    public static func detect(_ c: QuantizedLayouts.Context) throws(FormatError) -> CompressedTensorsLayout? {
        guard let q = c.quantizationConfig, q["quant_method"]?.stringValue == "compressed-tensors" else { return nil }
        let format = q["format"]?.stringValue ?? "dense"
        guard formats.contains(format) else {
            throw FormatError.unsupported(file: c.configPath, tensor: nil, message:
                "compressed-tensors format '\(format)' is not read (supported: \(formats.sorted().joined(separator: ", ")))")
        }
        if let s = q["sparsity_config"], let o = s.objectValue, !o.keys.isEmpty, !(s["format"]?.stringValue == "dense") {
            throw FormatError.unsupported(file: c.configPath, tensor: nil, message: "compressed-tensors sparsity_config \(s) is not read")
        }
        for (name, g) in q["config_groups"]?.objectValue ?? JSONObject() {
            if let f = g["format"]?.stringValue, !formats.contains(f) {
                throw FormatError.unsupported(file: c.configPath, tensor: nil, message:
                    "compressed-tensors config group '\(name)' has format '\(f)', which is not read (supported: pack-quantized, float-quantized)")
            }
            guard let w = g["weights"], !w.isNull else { continue }
            let type = w["type"]?.stringValue ?? "int", bits = w["num_bits"]?.intValue ?? 8
            let strategy = w["strategy"]?.stringValue ?? "tensor"
            let ok = (type == "int" && (bits == 4 || bits == 8) && ["group", "channel"].contains(strategy))
                || (type == "float" && bits == 8 && ["tensor", "channel"].contains(strategy))
            guard ok else {
                throw FormatError.unsupported(file: c.configPath, tensor: nil, message:
                    "compressed-tensors config group '\(name)': \(type) \(bits)-bit weights with strategy '\(strategy)' are not read "
                    + "(read: int 4/8-bit group or channel, float 8-bit tensor or channel)")
            }
            if let a = w["actorder"], !a.isNull, a.stringValue != "weight", a.boolValue != false {
                throw FormatError.unsupported(file: c.configPath, tensor: nil, message:
                    "compressed-tensors config group '\(name)': actorder \(a) (a g_idx column permutation) is not read")
            }
        }
        return CompressedTensorsLayout(format: format, version: q["version"]?.stringValue, declaredIn: c.configPath)
    }

    public var json: JSONValue {
        var o: JSONObject = ["format": "compressed-tensors", "compression_format": .string(format), "declared_in": .string(declaredIn)]
        if let v = version { o["version"] = .string(v) }
        return .object(o)
    }

    public var summary: String { "compressed-tensors \(format)" }

    public func storedNames(for weight: String) -> [String] {
        weight.hasSuffix(".weight") ? [weight + "_packed"] : []
    }

    public func bind(weight name: String, view: TensorView, lookup: (String) -> TensorView?) throws(FormatError) -> (TensorSource, consumed: [String]) {
        if name.hasSuffix(".weight_packed") {
            let stem = String(name.dropLast("weight_packed".count))
            if lookup(stem + "weight_g_idx") != nil {
                throw FormatError.unsupported(file: view.path, tensor: stem + "weight_g_idx", message: "act-order (g_idx column permutation) is not read")
            }
            guard let scale = lookup(stem + "weight_scale") else {
                throw FormatError.invalidTensor(file: view.path, tensor: name, message: "packed weight without its \(stem)weight_scale")
            }
            guard let shape = lookup(stem + "weight_shape") else {
                throw FormatError.invalidTensor(file: view.path, tensor: name, message: "packed weight without its \(stem)weight_shape")
            }
            let zp = lookup(stem + "weight_zero_point")
            let t = try CompressedTensorsIntTensor(name: name, packed: view, scale: scale, shape: shape, zeroPoint: zp)
            return (TensorSource(encoded: t), [stem + "weight_scale", stem + "weight_shape"] + (zp != nil ? [stem + "weight_zero_point"] : []))
        }
        let stem = name.hasSuffix(".weight") ? String(name.dropLast(6)) : name + "_"
        guard let scale = lookup(stem + "weight_scale") else {
            if view.dtype == .f8e4m3 {
                throw FormatError.invalidTensor(file: view.path, tensor: name, message: "F8_E4M3 weight without its \(stem)weight_scale (\(summary) checkpoint)")
            }
            return (TensorSource(view), [])
        }
        guard view.dtype == .f8e4m3 else {
            throw FormatError.invalidTensor(file: scale.path, tensor: stem + "weight_scale", message:
                "a weight_scale beside a \(view.dtype.rawValue) weight (\(name)); compressed-tensors stores FP8 weights as F8_E4M3 and integer ones as weight_packed")
        }
        var consumed = [stem + "weight_scale"]
        if lookup(stem + "weight_zero_point") != nil { consumed.append(stem + "weight_zero_point") }
        let t = try ModelOptFP8Tensor(name: name, codes: view, scale: scale, scaleName: stem + "weight_scale", origin: "compressed-tensors FP8")
        return (TensorSource(encoded: t), consumed)
    }

    public func isRuntimeOnly(_ name: String) -> Bool {
        name.hasSuffix(".input_scale") || name.hasSuffix(".input_zero_point") || name.hasSuffix(".k_scale") || name.hasSuffix(".v_scale")
    }

    public func checkRuntimeOnly(_ name: String, view: TensorView) throws(FormatError) {
        if name.hasSuffix("_zero_point") { return }
        try ModelOptLayout.checkScalar(view, name: name)
    }
}
