import Formats

/// Whatever a MODEL argument names, opened as weights for the forward pass: a Hugging Face
/// checkpoint (plain or already quantized — `QuantizedLayout`) or a packed file, with the
/// tokenizer that came with it and every file it reads. Commands open models only through this,
/// so a new input format is added in one place (`ModelFormat`).
public struct ModelInput: @unchecked Sendable {
    public let path: String
    public let format: ModelFormat
    public let weights: WeightProvider
    public let packed: PackedWeights?
    public let checkpoint: Checkpoint?
    public let gguf: GGUFModel?
    /// Every file this input reads, for `OutputPath.check`.
    public let files: [String]

    /// Where the tokenizer comes from: a tokenizer.json beside the checkpoint, one stored inside
    /// a packed file, or none.
    public enum TokenizerSource: Sendable {
        case file(String)
        case stored([UInt8])
    }

    public init(path: String) throws {
        self.path = path
        format = try ModelFormat.detect(path)
        if format == .packed {
            let p = try PackedWeights(path: path)
            weights = p
            packed = p
            checkpoint = nil
            gguf = nil
            files = [path]
            return
        }
        if format == .gguf {
            let g = try GGUFModel.open(path)
            weights = CheckpointWeights(map: g.map)
            gguf = g
            packed = nil
            checkpoint = nil
            files = [path]
            return
        }
        let ck = try Checkpoint(path: path)
        weights = CheckpointWeights(map: try TensorMap(checkpoint: ck))
        packed = nil
        checkpoint = ck
        gguf = nil
        files = ck.inputFiles
    }

    /// The tokenizer that came with the model; an error naming what is missing when there is none.
    public func tokenizerSource() throws -> TokenizerSource {
        if let pk = packed {
            guard let bytes = try pk.file.blob("tokenizer.json") else {
                throw FormatError.io(file: path, message: "the packed file carries no tokenizer.json; pass --tokenizer FILE")
            }
            return .stored(bytes)
        }
        if let g = gguf {
            guard let bytes = try GGUFVocabulary.tokenizerJSON(from: g.file) else {
                throw FormatError.io(file: path, message: "the GGUF file carries no tokenizer (tokenizer.ggml.*); pass --tokenizer FILE")
            }
            return .stored(bytes)
        }
        let t = checkpoint!.directory + "/tokenizer.json"
        guard checkpoint!.inputFiles.contains(t) else {
            throw FormatError.io(file: path, message: "no tokenizer.json next to the model; pass --tokenizer FILE")
        }
        return .file(t)
    }
}
