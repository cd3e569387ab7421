/// How a checkpoint that is already quantized stores its weights: which tensors hold codes, which
/// hold the scales beside them, and how the two make values. One conforming type per layout
/// (`ModelOptLayout`), found by `QuantizedLayouts.detect` from config.json's `quantization_config`
/// (or a side file such as ModelOpt's hf_quant_config.json).
///
/// A layout sees each weight as `TensorMap` binds it and returns its `TensorSource`: the plain
/// view for a tensor the checkpoint kept in high precision, an `EncodedTensor` for a quantized one.
/// The scale tensors it reads are reported as consumed, so that a scale nothing reads is an error
/// (`TensorMap`), never silently dropped.
public protocol QuantizedLayout: Sendable {
    /// This layout when the checkpoint is in it, nil when it is not, an error when it is but in a
    /// variant that cannot be read.
    static func detect(_ c: QuantizedLayouts.Context) throws(FormatError) -> Self?
    /// What the checkpoint says it is, for `inspect` and a pack's provenance:
    /// `{"format": "modelopt", "quant_algo": "FP8", "producer": …}`.
    var json: JSONValue { get }
    /// One line: `ModelOpt FP8 (weight_scale per tensor)`.
    var summary: String { get }
    /// The source of weight `name` (stored as `view`) and the names of the other tensors it read
    /// (scales). `lookup` finds a checkpoint tensor by its name as stored.
    func bind(weight name: String, view: TensorView, lookup: (String) -> TensorView?) throws(FormatError) -> (TensorSource, consumed: [String])
    /// Other names a weight may be stored under (compressed-tensors' `M.weight_packed` for
    /// `M.weight`), tried when the weight's own name is absent.
    func storedNames(for weight: String) -> [String]
    /// Tensors the layout stores for the runtime that the model's values do not depend on
    /// (activation and KV-cache scales): accepted and listed by `inspect`, not used.
    func isRuntimeOnly(_ name: String) -> Bool
    /// Checks a runtime-only tensor's value (a positive finite scalar scale, say).
    func checkRuntimeOnly(_ name: String, view: TensorView) throws(FormatError)
}

extension QuantizedLayout {
    public func storedNames(for weight: String) -> [String] { [] }
}

/// The quantized layouts nemo-convert reads, and the detection that picks one.
public enum QuantizedLayouts {
    /// What detection is given: config.json's `quantization_config` (nil when absent), and the
    /// model directory to look for side files in.
    public struct Context {
        public let quantizationConfig: JSONValue?
        public let configPath: String
        public let directory: String
    }

    /// Every layout, asked in turn (`QuantizedLayout.detect`). A new layout is one file and one
    /// line here.
    static let registry: [any QuantizedLayout.Type] = [
        ModelOptLayout.self,
        CompressedTensorsLayout.self,
    ]

    /// The layout of the checkpoint in `directory` whose config.json (`configPath`) parsed to
    /// `config`; nil for an unquantized checkpoint. A `quantization_config` no layout claims is an
    /// error naming its `quant_method`: reading its codes as plain weights would give a different
    /// model.
    public static func detect(config: JSONValue, configPath: String, directory: String) throws(FormatError) -> (any QuantizedLayout)? {
        let q = config["quantization_config"]
        let ctx = Context(quantizationConfig: q.flatMap { $0.isNull ? nil : $0 }, configPath: configPath, directory: directory)
        for layout in registry {
            if let l = try layout.detect(ctx) { return l }
        }
        if let q = ctx.quantizationConfig {
            let method = q["quant_method"]?.stringValue ?? q["quant_library"]?.stringValue
            throw FormatError.unsupported(file: configPath, tensor: nil, message:
                "quantization_config with quant_method \(method.map { "'\($0)'" } ?? "(none)") is not a layout nemo-convert reads "
                + "(it reads ModelOpt FP8 and NVFP4, compressed-tensors pack-quantized and float-quantized checkpoints and unquantized ones; docs/FORMAT.md, \"Quantized inputs\")")
        }
        return nil
    }

    /// True for names that look like quantization side tensors (scales, zero points, packed
    /// integer weights): a checkpoint holding them without a `quantization_config` is refused with
    /// that said, not just as "tensors the config does not use".
    public static func looksLikeQuantizationTensor(_ name: String) -> Bool {
        for s in ["weight_scale", "weight_scale_2", "input_scale", "k_scale", "v_scale", "weight_scale_inv",
                  "weight_zero_point", "weight_packed", "weight_shape", "qweight", "qzeros", "scales", "g_idx"]
        where name.hasSuffix("." + s) || name.hasSuffix("_" + s) { return true }
        return false
    }
}
