import Formats
import Model
import Tokenizer

extension ModelInput {
    /// The tokenizer `--tokenizer` names, or the one that came with the model.
    func tokenizer(override: String?) throws -> Tokenizer {
        if let p = override { return try Tokenizer(contentsOf: p) }
        switch try tokenizerSource() {
        case .file(let p): return try Tokenizer(contentsOf: p)
        case .stored(let bytes): return try Tokenizer(json: bytes)
        }
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
