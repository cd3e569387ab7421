import Formats
import Model

/// What `convert` reads: a Hugging Face checkpoint or a GGUF file, as the tensor map, the config
/// and tokenizer that go into the output, and the files no output may replace.
struct ConvertInput {
    let map: TensorMap
    let files: [String]
    /// config.json's fields (a GGUF file's rebuilt from its metadata).
    let configJSON: JSONObject
    let provenance: JSONObject
    let tokenizerJSON: [UInt8]?
    /// The model's name for GGUF's `general.name` (the directory or file name).
    let name: String
    /// How messages name the input's files ("the checkpoint's config.json").
    let what: String
    private let checkpoint: Checkpoint?
    /// The model directory of a checkpoint input (where its tokenizer and companion files are).
    var directory: String? { checkpoint?.directory }
    private let gguf: GGUFModel?

    init(path: String) throws {
        switch try ModelFormat.detect(path) {
        case .packed:
            throw FormatError.unsupported(file: path, tensor: nil, message: "is a packed file, already converted; convert reads a Hugging Face checkpoint (plain, or ModelOpt FP8/NVFP4) or a GGUF file")
        case .gguf:
            let g = try GGUFModel.open(path)
            gguf = g; checkpoint = nil
            map = g.map
            files = [path]
            configJSON = g.configJSON
            let f = g.file
            provenance = ["sources": [["file": .string(String(path.split(separator: "/").last ?? "")), "bytes": .int(f.file.count),
                                       "format": .string("GGUF v\(f.version)")]]]
            tokenizerJSON = try GGUFVocabulary.tokenizerJSON(from: f)
            var n = String(path.split(separator: "/").last ?? "")
            if n.hasSuffix(".gguf") { n.removeLast(5) }
            name = f.value("general.name")?.stringValue ?? n
            what = "the input GGUF file"
        default:
            let ck = try Checkpoint(path: path)
            checkpoint = ck; gguf = nil
            map = try TensorMap(checkpoint: ck)
            files = ck.inputFiles
            configJSON = try JSONParser.parse(ck.configBytes).objectValue ?? [:]
            provenance = ck.provenance
            let t = ck.directory + "/tokenizer.json"
            tokenizerJSON = fileExists(t) ? try MappedFile.contents(of: t) : nil
            name = ck.directory
            what = "the checkpoint's"
        }
    }

    /// The `tokenizer.ggml.*` keys: a GGUF input's own, or built from tokenizer.json and
    /// tokenizer_config.json. An error when there is no tokenizer: a GGUF file without one cannot
    /// be run by llama.cpp.
    func ggufTokenizer(vocabSize: Int) throws -> [(key: String, value: GGUFValue)] {
        if let g = gguf {
            return g.file.metadata.filter { $0.key.hasPrefix("tokenizer.") }
        }
        let ck = checkpoint!
        guard let t = tokenizerJSON else {
            throw FormatError.io(file: ck.directory, message: "no tokenizer.json next to the model: a GGUF file needs the tokenizer in its metadata")
        }
        let cfg = ck.directory + "/tokenizer_config.json"
        return try GGUFVocabulary.metadata(tokenizerJSON: t, tokenizerConfig: fileExists(cfg) ? try MappedFile.contents(of: cfg) : nil,
                                           vocabSize: vocabSize, config: map.config, file: ck.directory + "/tokenizer.json")
    }
}
