import Foundation
import Formats

/// Pass/fail limits for release pipelines (`--max-kld`, `--min-top1`, `--max-ppl-ratio`). A
/// limit left nil is not checked.
public struct VerifyThresholds: Equatable, Sendable {
    /// Upper bound on the mean per-token KL divergence, in nats.
    public var maxKLD: Double?
    /// Lower bound on top-1 agreement, a fraction (0.975 = 97.5 %).
    public var minTop1: Double?
    /// Upper bound on ppl(quantized) / ppl(original).
    public var maxPPLRatio: Double?

    public init(maxKLD: Double? = nil, minTop1: Double? = nil, maxPPLRatio: Double? = nil) {
        self.maxKLD = maxKLD; self.minTop1 = minTop1; self.maxPPLRatio = maxPPLRatio
    }

    public var isEmpty: Bool { maxKLD == nil && minTop1 == nil && maxPPLRatio == nil }

    /// One message per failed limit, naming the option and both values; empty when all pass.
    /// NaN measurements fail every limit that reads them.
    public func failures(_ r: VerifyReport) -> [String] {
        var out: [String] = []
        if let m = maxKLD, !(r.kld.mean <= m) {
            out.append("mean KL divergence \(Self.format(r.kld.mean)) exceeds --max-kld \(Self.format(m))")
        }
        if let m = minTop1, !(r.top1Agreement >= m) {
            out.append("top-1 agreement \(Self.format(r.top1Agreement)) is below --min-top1 \(Self.format(m))")
        }
        if let m = maxPPLRatio, !(r.pplRatio <= m) {
            out.append("perplexity ratio \(Self.format(r.pplRatio)) exceeds --max-ppl-ratio \(Self.format(m))")
        }
        return out
    }

    /// The limits that were set, as `{"max_kld": …, "min_top1": …, "max_ppl_ratio": …}`.
    public var json: JSONValue {
        var o = JSONObject()
        if let v = maxKLD { o["max_kld"] = .number(v) }
        if let v = minTop1 { o["min_top1"] = .number(v) }
        if let v = maxPPLRatio { o["max_ppl_ratio"] = .number(v) }
        return .object(o)
    }

    static func format(_ v: Double) -> String { String(format: "%.6g", v) }
}
