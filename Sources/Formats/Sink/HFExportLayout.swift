/// The format-specific half of a Hugging Face checkpoint export (`HFCheckpointSink`): how one
/// tensor's codec sections (docs/FORMAT.md: `codes`, `scales`, `zero_points`, `global_scales`,
/// per row segment) become named safetensors tensors, and what config.json (and any side file)
/// says about them. One conforming type per format: `CompressedTensorsExport`, `ModelOptExport`.
///
/// The sink streams the codes (the bulk of every tensor) through `HFTensorPlan.transformRow`
/// without holding the tensor, and hands the small sections (scales, zero points) to
/// `sideTensors` once the tensor is complete.
public protocol HFExportLayout: Sendable {
    /// What the format stores, checked against a plan before anything is written.
    var rules: SinkRules { get }
    /// The main tensor that `tensor`'s codes become, and how its rows are rewritten.
    func plan(_ tensor: SinkTensor) throws(FormatError) -> HFTensorPlan
    /// The tensors stored beside the main one (scales, zero points, the original shape), from the
    /// tensor's non-code sections, concatenated over its row segments in order. `attributes` are
    /// the converter's for this tensor (`segments`, and from calibration `input_absmax`,
    /// `output_absmax`; from a quantized source its runtime scales, `source_input_scale` …).
    func sideTensors(_ tensor: SinkTensor, plan: HFTensorPlan, segments: [HFSegment],
                     sections: [String: [UInt8]], attributes: JSONObject) throws(FormatError) -> [(TensorDeclaration, [UInt8])]
    /// config.json's `quantization_config` (nil: none) and any side files (ModelOpt's
    /// hf_quant_config.json), from every tensor written, in order.
    func finish(written: [HFWrittenTensor]) throws(FormatError) -> (quantizationConfig: JSONValue?, files: [(String, [UInt8])])
}

/// One row segment of a tensor as the converter planned it (the `segments` attribute).
public struct HFSegment: Sendable, Equatable {
    public var name: String
    public var rows: Range<Int>
    public var scheme: String
    public var blockRows: Int?
}

/// A tensor as the export wrote it: the source's name, role and scheme, and what it became.
public struct HFWrittenTensor: Sendable {
    public var tensor: SinkTensor
    /// The scheme every segment shares (export formats store one per tensor).
    public var scheme: String
    public var stored: [TensorDeclaration]
}

/// How a tensor's codes become the main stored tensor.
public struct HFTensorPlan: Sendable {
    /// The main tensor (the codes, or the values of a high-precision tensor).
    public var main: TensorDeclaration
    /// Bytes of one row of codes as the codec writes them; 0 = copy the bytes as they come.
    public var sourceRowBytes: Int
    /// Bytes of one stored row (≥ the codes it holds: int32 packing pads a row to whole words).
    public var storedRowBytes: Int
    /// Rewrites one row: `sourceRowBytes` in, `storedRowBytes` out.
    public var transformRow: (@Sendable (UnsafeRawPointer, UnsafeMutableRawPointer) -> Void)?

    public init(main: TensorDeclaration, sourceRowBytes: Int = 0, storedRowBytes: Int = 0,
                transformRow: (@Sendable (UnsafeRawPointer, UnsafeMutableRawPointer) -> Void)? = nil) {
        self.main = main; self.sourceRowBytes = sourceRowBytes; self.storedRowBytes = storedRowBytes
        self.transformRow = transformRow
    }

    /// Stored as it comes: high-precision tensors, FP8 codes, NVFP4 nibbles.
    public static func verbatim(_ d: TensorDeclaration) -> HFTensorPlan { HFTensorPlan(main: d) }
}

extension HFExportLayout {
    /// The module a weight belongs to: `backbone.layers.0.mixer.in_proj` for
    /// `backbone.layers.0.mixer.in_proj.weight`.
    public static func module(of name: String) -> String {
        name.hasSuffix(".weight") ? String(name.dropLast(7)) : name
    }
}

/// The scheme spellings export layouts parse (the codec names of Quantize, which Formats does
/// not import): `int4-g128-sym`, `int8`, `fp8-tensor`, `bf16`, …
public enum HFScheme: Equatable, Sendable {
    case float(DType)
    case int4(group: Int, symmetric: Bool)
    case int8
    case fp8(perTensor: Bool)
    case nvfp4
    case other(String)

    public init(_ s: String) {
        switch s {
        case "bf16": self = .float(.bf16)
        case "f16": self = .float(.f16)
        case "f32": self = .float(.f32)
        case "int8": self = .int8
        case "fp8-tensor": self = .fp8(perTensor: true)
        case "fp8-channel": self = .fp8(perTensor: false)
        case "nvfp4": self = .nvfp4
        default:
            if s.hasPrefix("int4-g"), s.hasSuffix("-sym") || s.hasSuffix("-asym") {
                let sym = s.hasSuffix("-sym")
                if let g = Int(s.dropFirst(6).dropLast(sym ? 4 : 5)), g > 0 { self = .int4(group: g, symmetric: sym); return }
            }
            self = .other(s)
        }
    }
}

/// Segments from a tensor's `segments` attribute (`TensorPlan.segmentsJSON`).
func hfSegments(_ attributes: JSONObject, tensor: SinkTensor, file: String) throws(FormatError) -> [HFSegment] {
    guard let list = attributes["segments"]?.arrayValue, !list.isEmpty else {
        return [HFSegment(name: "", rows: 0..<(tensor.shape.first ?? 1), scheme: tensor.scheme, blockRows: nil)]
    }
    var out: [HFSegment] = []
    for s in list {
        guard let name = s["name"]?.stringValue, let r = s["rows"]?.arrayValue, r.count == 2,
              let a = r[0].intValue, let b = r[1].intValue, a <= b, let scheme = s["scheme"]?.stringValue else {
            throw FormatError.invalidTensor(file: file, tensor: tensor.name, message: "malformed segments attribute \(s)")
        }
        out.append(HFSegment(name: name, rows: a..<b, scheme: scheme, blockRows: s["block_rows"]?.intValue))
    }
    return out
}

/// What `convert -o` writes: a packed file, or a Hugging Face directory in a runtime's layout.
public enum OutputFormat: String, CaseIterable, Sendable {
    /// nemo-convert's packed file (docs/FORMAT.md).
    case packed
    /// llama.cpp's GGUF (docs/GGUF.md).
    case gguf
    /// A Hugging Face directory in the compressed-tensors layout (docs/HF-EXPORTS.md).
    case compressedTensors = "compressed-tensors"
    /// A Hugging Face directory in NVIDIA ModelOpt's unified layout (docs/HF-EXPORTS.md).
    case modelopt

    /// The export layout of a Hugging Face directory format; nil for the packed file and GGUF.
    public var hfLayout: (any HFExportLayout)? { hfLayout() }

    /// The layout with what the recipe and the program add: an FP8 KV cache to declare (ModelOpt)
    /// and the exporter's name and version written beside the producer.
    public func hfLayout(kvCacheFP8: Bool = false, exporter: JSONValue = ["name": "nemo-convert"]) -> (any HFExportLayout)? {
        switch self {
        case .packed, .gguf: return nil
        case .compressedTensors: return CompressedTensorsExport()
        case .modelopt: return ModelOptExport(kvCacheFP8: kvCacheFP8, exporter: exporter)
        }
    }

    /// Files of a model directory an export copies beside the weights: the tokenizer, generation
    /// settings, chat template, and remote code (`auto_map`'s *.py).
    public static func isCompanionFile(_ name: String) -> Bool {
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
         "chat_template.jinja", "tokenizer.model", "vocab.json", "merges.txt"].contains(name) || name.hasSuffix(".py")
    }
}
