import Formats
import Model
import Quantize

/// Collects `CalibrationStats` from the forward pass (a `ForwardObserver`).
///
/// Weights that read the same rows (q, k and v; a MoE layer's router input feeds the shared
/// expert too) share one accumulator, so a Gram matrix is computed once per input, not per weight.
public final class StatsCollector: ForwardObserver {
    public let stats: CalibrationStats
    public let experts: Int
    /// Accumulate Gram matrices (GPTQ).
    public let grams: Bool
    /// Run every token through every routed expert too (`EveryExpertFeed`).
    public let feedsEveryExpert: Bool
    /// Rows seen in the current `runLayer` call: input address → key, for sharing accumulators.
    private var seen: [(UnsafeRawPointer, Int, StatsKey)] = []
    private var aliases = Set<StatsKey>()
    /// Keys whose statistics are not needed (weights kept high precision).
    private let skip: (StatsKey) -> Bool

    public init(stats: CalibrationStats = CalibrationStats(), experts: Int, grams: Bool, feedEveryExpert: Bool = true,
                skip: @escaping (StatsKey) -> Bool = { _ in false }) {
        self.stats = stats
        self.experts = experts
        self.grams = grams
        self.feedsEveryExpert = feedEveryExpert
        self.skip = skip
    }

    /// Call before each batch goes through a layer: input addresses are only meaningful within one.
    public func beginBatch() { seen.removeAll(keepingCapacity: true) }

    public func linearInput(layer: Int, role: TensorRole, expert: Int?, input: UnsafePointer<Float>, rows: Int, width: Int) {
        record(StatsKey(role, layer: layer, expert: expert), input, rows, width)
    }

    /// K and V projections' outputs: their largest magnitude, for FP8 KV-cache scales.
    public func linearOutput(layer: Int, role: TensorRole, output: UnsafePointer<Float>, rows: Int, width: Int) {
        let key = StatsKey(role, layer: layer)
        stats.addOutputAbsMax(key, FP8E4M3.absMax(output, count: rows * width))
    }

    public func routedExperts(_ experts: RoutedExperts, input: UnsafePointer<Float>, rows: Int) throws {
        guard feedsEveryExpert else { return }
        try EveryExpertFeed.run(experts, input: input, rows: rows) { role, expert, x, width in
            record(StatsKey(role, layer: experts.layer, expert: expert, fed: true), x, rows, width)
        }
    }

    public func routing(layer: Int, tokens: Int, topK: Int, indices: UnsafePointer<Int32>, weights: UnsafePointer<Float>) {
        stats.addRouting(layer: layer, experts: experts, indices: indices, count: tokens * topK)
    }

    private func record(_ key: StatsKey, _ x: UnsafePointer<Float>, _ rows: Int, _ width: Int) {
        if aliases.contains(key) || skip(key) { return }
        let address = UnsafeRawPointer(x)
        // Routed experts reuse one gather buffer, so only non-expert inputs can be shared by address.
        if key.expert == nil && !key.fed, stats[key] == nil,
           let first = seen.first(where: { $0.0 == address && $0.1 == rows && $0.2.expert == nil && !$0.2.fed }),
           let s = stats[first.2], s.width == width {
            stats.set(key, s)
            aliases.insert(key)
            return
        }
        let s: LinearStats
        if let existing = stats[key] {
            s = existing
        } else {
            s = LinearStats(width: width, gram: grams)
            stats.set(key, s)
        }
        s.add(x, rows: rows)
        if key.expert == nil && !key.fed { seen.append((address, rows, key)) }
    }
}
