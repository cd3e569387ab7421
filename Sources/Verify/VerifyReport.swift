import Formats

/// What `verify` measured: both models' perplexity on the same windows, how far the quantized
/// next-token distribution is from the original's, and where in the network the error arises.
public struct VerifyReport: Sendable {
    public struct Score: Sendable, Equatable {
        public var ppl: Double
        public var nllMean: Double
    }

    public struct ExpertError: Sendable, Equatable {
        public var index: Int
        /// Tokens the original router sent to this expert.
        public var tokens: Int
        /// Of those, the first ones its error was measured on (at most the probe's budget).
        public var measuredTokens: Int
        /// Relative error of the expert's output on the measured tokens (nil when it got none).
        public var relError: Double?
    }

    public struct LayerError: Sendable, Equatable {
        public var index: Int
        public var kind: LayerKind
        /// ‖x_q − x_o‖ / ‖x_o‖ of the residual stream after this layer, over every token.
        public var relError: Double
        /// MoE layers: fraction of the original's routed (token, expert) choices the quantized
        /// model also made.
        public var routingAgreement: Double?
        /// MoE layers: every routed expert's own error (empty when not measured).
        public var experts: [ExpertError]
    }

    public var original: Score
    public var quantized: Score
    /// Per scored token, KL(original ‖ quantized) in nats.
    public var kld: ValueSummary
    /// Fraction of scored tokens whose most likely next token is the same in both models.
    public var top1Agreement: Double
    public var tokensScored: Int
    public var windows: Int
    public var ctx: Int
    public var layers: [LayerError]
    public var seconds: Double
    /// Tokens run through both models per second (every token of every window, as perplexity counts).
    public var tokensPerSecond: Double
    public var peakRSSBytes: Int

    public var pplRatio: Double { quantized.ppl / original.ppl }

    /// The `--json` object: the fields issue 6 specifies, plus nll, window count, timing and the
    /// MoE extras.
    public var json: JSONValue {
        let layerList: [JSONValue] = layers.map { l in
            var o: JSONObject = ["index": .int(l.index), "kind": .string(l.kind.name), "rel_error": .number(l.relError)]
            if let r = l.routingAgreement { o["routing_agreement"] = .number(r) }
            if !l.experts.isEmpty {
                o["experts"] = .array(l.experts.map { e in
                    ["index": .int(e.index), "tokens": .int(e.tokens), "measured_tokens": .int(e.measuredTokens),
                     "rel_error": e.relError.map { .number($0) } ?? .null]
                })
            }
            return .object(o)
        }
        return [
            "original": ["ppl": .number(original.ppl), "nll_mean": .number(original.nllMean)],
            "quantized": ["ppl": .number(quantized.ppl), "nll_mean": .number(quantized.nllMean)],
            "ppl_ratio": .number(pplRatio),
            "kld": ["mean": .number(kld.mean), "median": .number(kld.median), "p99": .number(kld.p99), "max": .number(kld.max)],
            "top1_agreement": .number(top1Agreement),
            "tokens_scored": .int(tokensScored),
            "windows": .int(windows), "ctx": .int(ctx),
            "layers": .array(layerList),
            "seconds": .number(seconds), "tokens_per_second": .number(tokensPerSecond), "peak_rss_bytes": .int(peakRSSBytes),
        ]
    }
}
