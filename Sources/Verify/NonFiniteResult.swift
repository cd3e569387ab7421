/// A model's logits or loss came out NaN or infinite: its weights or config are broken, and no
/// figure computed from them (perplexity, KL, agreement) means anything. Reported instead of a
/// result, so a NaN model never passes for a good one.
public struct NonFiniteResult: Error, CustomStringConvertible, Sendable {
    /// "original" or "quantized" in verify; nil in perplexity.
    public var model: String?
    public var window: Int
    /// Position in the window of the scored token's prediction.
    public var token: Int
    /// What was not finite: "negative log-likelihood" or "KL divergence".
    public var quantity: String
    public var value: Double

    public var description: String {
        "\(quantity) is \(value) at window \(window), token \(token)\(model.map { " of the \($0) model" } ?? ""): "
            + "the model's logits are not finite, so its weights or config.json are broken (inspect --verify checks the weights)"
    }
}
