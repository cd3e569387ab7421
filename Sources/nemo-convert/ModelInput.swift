import Calibrate
import Model
import Formats
import Tokenizer

/// Opens whatever a MODEL argument names — a Hugging Face directory, a .safetensors file or a
/// packed file — as weights for the forward pass, plus the tokenizer that came with it.
struct ModelInput {
    let weights: WeightProvider
    let tokenizerPath: String?
    let packed: PackedWeights?
    let checkpoint: Checkpoint?
    /// Every file this input reads, for `OutputPath.check`.
    let files: [String]
    let path: String

    init(path: String) throws {
        self.path = path
        if PackedFile.isPacked(path: path) {
            let p = try PackedWeights(path: path)
            weights = p
            packed = p
            checkpoint = nil
            tokenizerPath = nil
            files = [path]
            return
        }
        let ck = try Checkpoint(path: path)
        weights = CheckpointWeights(map: try TensorMap(checkpoint: ck))
        packed = nil
        checkpoint = ck
        files = ck.inputFiles
        let t = ck.directory + "/tokenizer.json"
        tokenizerPath = fileExists(t) ? t : nil
    }

    func tokenizer(override: String?) throws -> Tokenizer {
        if let p = override { return try Tokenizer(contentsOf: p) }
        if let pk = packed, let bytes = try pk.file.blob("tokenizer.json") { return try Tokenizer(json: bytes) }
        guard let p = tokenizerPath else {
            throw FormatError.io(file: path, message: packed == nil ? "no tokenizer.json next to the model; pass --tokenizer FILE"
                                                                    : "the packed file carries no tokenizer.json; pass --tokenizer FILE")
        }
        return try Tokenizer(contentsOf: p)
    }
}

import ArgumentParser
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

func fileExists(_ p: String) -> Bool { access(p, F_OK) == 0 }

/// Reads a whole text file as UTF-8.
func readText(_ path: String) throws -> String {
    let bytes = try MappedFile.contents(of: path)
    guard let s = String(validating: bytes, as: UTF8.self) else {
        throw FormatError.io(file: path, message: "not valid UTF-8 text")
    }
    return s
}

/// Text shorter than one evaluation window is an input problem (65), named with its file.
func tooShort(_ text: String, tokens: Int, ctx: Int) -> FormatError {
    .io(file: text, message: "has \(tokens) tokens, fewer than one window of --ctx \(ctx) (use a longer text or a smaller --ctx)")
}
