/// Mean, median, 99th percentile and maximum of a list of values (per-token KL divergences).
///
/// Percentiles interpolate linearly between the two nearest ranks, numpy's default: the q-th
/// percentile of n sorted values sits at position q·(n − 1).
public struct ValueSummary: Equatable, Sendable {
    public var mean: Double
    public var median: Double
    public var p99: Double
    public var max: Double
    public var count: Int

    public init(mean: Double, median: Double, p99: Double, max: Double, count: Int) {
        self.mean = mean; self.median = median; self.p99 = p99; self.max = max; self.count = count
    }

    public init(_ values: [Double]) {
        guard !values.isEmpty else { self.init(mean: 0, median: 0, p99: 0, max: 0, count: 0); return }
        let s = values.sorted()
        var sum = 0.0
        for v in s { sum += v }
        self.init(mean: sum / Double(s.count), median: Self.percentile(s, 0.5), p99: Self.percentile(s, 0.99),
                  max: s[s.count - 1], count: s.count)
    }

    /// The q-quantile (0…1) of already sorted values.
    public static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let pos = q * Double(sorted.count - 1)
        let lo = Int(pos), hi = Swift.min(lo + 1, sorted.count - 1)
        let f = pos - Double(lo)
        return sorted[lo] + f * (sorted[hi] - sorted[lo])
    }
}
