/// NVIDIA ModelOpt's Hugging Face export (`export_hf_checkpoint`): tensor names as in the original
/// checkpoint, quantized linear weights stored as codes with their scales beside them, and the
/// scheme named in config.json's `quantization_config` (`quant_method: "modelopt"`) or in the
/// side file hf_quant_config.json. docs/FORMAT.md ("Quantized inputs") describes the layouts:
///
/// - FP8: `W.weight` F8_E4M3 [out, in], `W.weight_scale` F32, one value (per tensor) or [out] /
///   [out, 1] (per channel); value = e4m3(code) × scale.
/// - NVFP4: `W.weight` U8 [out, in/2] (two E2M1 codes a byte, low nibble = even column),
///   `W.weight_scale` F8_E4M3 [out, in/16], `W.weight_scale_2` F32 scalar;
///   value = e2m1(code) × e4m3(block scale) × scale_2.
/// - `W.input_scale` (static activation scale) and `k_proj.k_scale` / `v_proj.v_scale` (FP8 KV
///   cache) are for the runtime; they are checked (finite, positive) and listed, and do not change
///   the weights' values.
///
/// Which tensors are quantized is read from each tensor's dtype and scales, so mixed exports
/// (`MIXED_PRECISION`, `exclude_modules` kept in BF16) need nothing more.
public struct ModelOptLayout: QuantizedLayout {
    public let quantAlgo: String
    public let kvCacheAlgo: String?
    public let producer: JSONValue?
    /// Where the scheme was declared (config.json or hf_quant_config.json).
    public let declaredIn: String

    static let algorithms: Set<String> = ["FP8", "FP8_PER_CHANNEL_PER_TOKEN", "NVFP4", "MIXED_PRECISION"]

    public static func detect(_ c: QuantizedLayouts.Context) throws(FormatError) -> ModelOptLayout? {
        var section: JSONValue?, producer: JSONValue?, declaredIn = c.configPath
        if let q = c.quantizationConfig {
            guard q["quant_method"]?.stringValue == "modelopt" || q["quant_library"]?.stringValue == "modelopt" else { return nil }
            section = q["quantization"] ?? q
            producer = q["producer"]
        } else {
            let side = join(c.directory, "hf_quant_config.json")
            guard fileExists(side) else { return nil }
            let json: JSONValue
            do { json = try JSONParser.parse(try MappedFile.contents(of: side)) } catch let e as FormatError { throw e } catch {
                throw FormatError.invalidConfig(file: side, message: "not valid JSON: \(error)")
            }
            guard let q = json["quantization"] else {
                throw FormatError.invalidConfig(file: side, message: "no 'quantization' object")
            }
            section = q
            producer = json["producer"]
            declaredIn = side
        }
        guard let algo = section?["quant_algo"]?.stringValue else {
            throw FormatError.invalidConfig(file: declaredIn, message: "ModelOpt quantization config without a quant_algo")
        }
        guard algorithms.contains(algo.uppercased()) else {
            throw FormatError.unsupported(file: declaredIn, tensor: nil, message:
                "ModelOpt quant_algo '\(algo)' is not read (supported: \(algorithms.sorted().joined(separator: ", ")))")
        }
        var kv = (section?["kv_cache_quant_algo"] ?? section?["kv_cache_scheme"]).flatMap { $0.isNull ? nil : $0 }
        // config.json spells an FP8 KV cache as compressed-tensors-style arguments (ModelOpt's
        // convert_hf_quant_config_format): {"dynamic": false, "num_bits": 8, "type": "float"}.
        if let o = kv?.objectValue, o["num_bits"]?.intValue == 8, o["type"]?.stringValue == "float", o["dynamic"]?.boolValue != true {
            kv = "FP8"
        }
        if let kv, kv.stringValue?.uppercased() != "FP8" {
            throw FormatError.unsupported(file: declaredIn, tensor: nil, message: "ModelOpt kv_cache_quant_algo \(kv) is not read (supported: FP8)")
        }
        return ModelOptLayout(quantAlgo: algo.uppercased(), kvCacheAlgo: kv?.stringValue?.uppercased(), producer: producer, declaredIn: declaredIn)
    }

    public var json: JSONValue {
        var o: JSONObject = ["format": "modelopt", "quant_algo": .string(quantAlgo), "declared_in": .string(declaredIn)]
        if let kv = kvCacheAlgo { o["kv_cache_quant_algo"] = .string(kv) }
        if let p = producer { o["producer"] = p }
        return .object(o)
    }

    public var summary: String { "ModelOpt \(quantAlgo)" + (kvCacheAlgo.map { ", \($0) KV cache scales" } ?? "") }

    public func bind(weight name: String, view: TensorView, lookup: (String) -> TensorView?) throws(FormatError) -> (TensorSource, consumed: [String]) {
        let stem = name.hasSuffix(".weight") ? String(name.dropLast(6)) : name + "_"
        let scaleName = stem + "weight_scale", scale2Name = stem + "weight_scale_2"
        // `input_scale` is the runtime's (`isRuntimeOnly`), checked and listed by TensorMap.
        var consumed: [String] = []
        guard let scale = lookup(scaleName) else {
            if view.dtype == .f8e4m3 || view.dtype == .u8 {
                throw FormatError.invalidTensor(file: view.path, tensor: name, message:
                    "\(view.dtype.rawValue) weight without its \(scaleName): its values cannot be known (\(summary) checkpoint)")
            }
            if lookup(scale2Name) != nil {
                throw FormatError.invalidTensor(file: view.path, tensor: scale2Name, message: "weight_scale_2 without a weight_scale")
            }
            return (TensorSource(view), consumed)
        }
        consumed.append(scaleName)
        switch view.dtype {
        case .f8e4m3:
            if lookup(scale2Name) != nil {
                throw FormatError.invalidTensor(file: view.path, tensor: scale2Name, message: "an FP8 weight has no second-level scale")
            }
            return (TensorSource(encoded: try ModelOptFP8Tensor(name: name, codes: view, scale: scale, scaleName: scaleName)), consumed)
        case .u8:
            guard let s2 = lookup(scale2Name) else {
                throw FormatError.invalidTensor(file: view.path, tensor: name, message: "U8 (NVFP4) weight without its \(scale2Name)")
            }
            consumed.append(scale2Name)
            return (TensorSource(encoded: try ModelOptNVFP4Tensor(name: name, codes: view, blockScales: scale, blockScalesName: scaleName,
                                                                  globalScale: s2, globalScaleName: scale2Name)), consumed)
        default:
            throw FormatError.invalidTensor(file: scale.path, tensor: scaleName, message:
                "a weight_scale beside a \(view.dtype.rawValue) weight (\(name)): a \(summary) checkpoint stores quantized weights as F8_E4M3 or U8")
        }
    }

    public func isRuntimeOnly(_ name: String) -> Bool {
        name.hasSuffix(".input_scale") || (kvCacheAlgo != nil && (name.hasSuffix(".k_scale") || name.hasSuffix(".v_scale")))
    }

    public func checkRuntimeOnly(_ name: String, view: TensorView) throws(FormatError) {
        try Self.checkScalar(view, name: name)
    }

    /// A scale the runtime multiplies by: one finite, positive value.
    static func checkScalar(_ v: TensorView, name: String) throws(FormatError) {
        guard v.elementCount == 1, v.dtype.isFloatingPoint else {
            throw FormatError.invalidTensor(file: v.path, tensor: name, message: "expected one floating-point value, found \(v.dtype.rawValue) \(v.shape)")
        }
        let x = try v.floats()[0]
        guard x.isFinite, x > 0 else {
            throw FormatError.invalidTensor(file: v.path, tensor: name, message: "scale \(x) is not a positive finite number")
        }
    }
}

/// Reads a scale tensor as Float32 values, each finite and positive (a zero or NaN scale would
/// turn a whole row into zeros or NaN without a word).
func positiveScales(_ v: TensorView, name: String) throws(FormatError) -> [Float] {
    guard v.dtype.isFloatingPoint else {
        throw FormatError.invalidTensor(file: v.path, tensor: name, message: "scale dtype \(v.dtype.rawValue) is not floating-point")
    }
    let s = try v.floats()
    if let i = s.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
        throw FormatError.invalidTensor(file: v.path, tensor: name, message: "scale \(s[i]) at index \(i) is not a positive finite number")
    }
    return s
}
