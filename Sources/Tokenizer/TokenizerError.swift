/// A tokenizer.json that cannot be loaded, or asks for something this implementation does not do.
///
/// Unsupported features are refused at load time rather than approximated: a tokenizer that
/// silently differs from Hugging Face tokenizers would produce ids the model was never trained on.
public struct TokenizerError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file the problem is in (the path given to `init(contentsOf:)`, or "tokenizer.json").
    public var file: String
    public var message: String

    public init(file: String, message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
