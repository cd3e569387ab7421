/// The evaluation protocol of the fixtures' reference.json: the whole text tokenized without
/// special tokens, cut into consecutive windows of `ctx` tokens with no overlap, the trailing
/// partial window dropped; each window starts from an empty state and every token but the first
/// is scored.
public struct EvaluationWindows: Sendable {
    public let tokens: [Int32]
    public let ctx: Int
    public let count: Int

    public init(tokens: [Int32], ctx: Int, maxWindows: Int? = nil) {
        precondition(ctx >= 2, "ctx must be at least 2 to score a token")
        self.tokens = tokens
        self.ctx = ctx
        let all = tokens.count / ctx
        self.count = maxWindows.map { min($0, all) } ?? all
    }

    public var tokensScored: Int { count * (ctx - 1) }

    /// Tokens of windows `range`, concatenated.
    public func tokens(_ range: Range<Int>) -> [Int32] {
        Array(tokens[(range.lowerBound * ctx)..<(range.upperBound * ctx)])
    }

    /// Batches of at most `size` windows.
    public func batches(of size: Int) -> [Range<Int>] {
        stride(from: 0, to: count, by: max(1, size)).map { $0..<min($0 + max(1, size), count) }
    }
}
