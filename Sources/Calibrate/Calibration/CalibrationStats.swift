import Formats
import Model

/// Which inputs a statistic describes: the linear weight (role, layer, expert), and whether the
/// rows came through the real forward path or through calibration's every-expert pass.
public struct StatsKey: Hashable, Sendable {
    public var role: TensorRole
    public var layer: Int?
    public var expert: Int?
    /// True for the every-expert pass (`EveryExpertFeed`); its `.expertUp` entry
    /// has no expert: all experts of the layer share those rows.
    public var fed: Bool

    public init(_ role: TensorRole, layer: Int?, expert: Int? = nil, fed: Bool = false) {
        self.role = role; self.layer = layer; self.expert = expert; self.fed = fed
    }

    /// The weight's Hugging Face name, with `.fed` for every-expert statistics (`experts.all` for
    /// the shared up-projection input).
    public var name: String {
        if fed && role == .expertUp && expert == nil {
            return "layers.\(layer ?? -1).mixer.experts.all.up_proj.weight.fed"
        }
        return role.hubName(layer: layer, expert: expert) + (fed ? ".fed" : "")
    }
}

/// Everything calibration collects, keyed by weight, plus how often real routing picked each
/// expert. Saved to and loaded from a safetensors file (docs/CALIBRATION.md) so a conversion can be
/// re-run or re-tuned without running the calibration text again, and merged across runs.
public final class CalibrationStats {
    public private(set) var linears: [StatsKey: LinearStats] = [:]
    /// layer → tokens routed to each expert by the real router.
    public private(set) var routingCounts: [Int: [Int]] = [:]
    /// Largest output magnitude of the K and V projections (what an FP8 KV cache must hold);
    /// merged by maximum. Files written before it existed have none.
    public private(set) var outputAbsMax: [StatsKey: Float] = [:]
    /// Calibration tokens that went through the model.
    public var tokens = 0

    public func addOutputAbsMax(_ key: StatsKey, _ m: Float) {
        outputAbsMax[key] = max(outputAbsMax[key] ?? 0, m)
    }

    public init() {}

    public subscript(_ key: StatsKey) -> LinearStats? { linears[key] }

    public func set(_ key: StatsKey, _ s: LinearStats) { linears[key] = s }

    public func addRouting(layer: Int, experts: Int, indices: UnsafePointer<Int32>, count: Int) {
        var c = routingCounts[layer] ?? [Int](repeating: 0, count: experts)
        for i in 0..<count { let e = Int(indices[i]); if e >= 0 && e < experts { c[e] = c[e].saturatingAdd(1) } }
        routingCounts[layer] = c
    }

    public func setRouting(layer: Int, counts: [Int]) { routingCounts[layer] = counts }

    /// The statistics a weight is quantized with. For routed experts, the every-expert rows are
    /// added with a weight that makes them worth the larger of a tenth of the real rows and twice
    /// the input width (enough for a well-conditioned Hessian): real routing decides what an
    /// expert is tuned for, the fed rows only keep rarely-picked experts from having no data.
    public func combined(_ role: TensorRole, layer: Int?, expert: Int?) -> LinearStats? {
        let real = linears[StatsKey(role, layer: layer, expert: expert)]
        var fed: LinearStats?
        if role == .expertUp { fed = linears[StatsKey(.expertUp, layer: layer, expert: nil, fed: true)] }
        if role == .expertDown { fed = linears[StatsKey(.expertDown, layer: layer, expert: expert, fed: true)] }
        guard let f = fed, f.rows > 0 else { return real }
        let realRows = real?.rows ?? 0
        let worth = min(Double(f.rows), max(0.1 * Double(realRows), 2 * Double(f.width)))
        let c = real?.copy() ?? LinearStats(width: f.width, gram: f.gram != nil)
        c.merge(f, weight: worth / Double(f.rows))
        return c
    }

    /// Adds another run's statistics (same model).
    public func merge(_ o: CalibrationStats, file: String) throws(FormatError) {
        for (k, s) in o.linears {
            if let mine = linears[k] {
                guard mine.width == s.width else {
                    throw FormatError.modelMismatch(file: file, message: "statistics of \(k.name) have width \(s.width), expected \(mine.width)")
                }
                mine.merge(s)
            } else {
                linears[k] = s.copy()
            }
        }
        for (l, c) in o.routingCounts {
            if let mine = routingCounts[l] {
                guard mine.count == c.count else {
                    throw FormatError.modelMismatch(file: file, message: "layer \(l) routing counts have \(c.count) experts, expected \(mine.count)")
                }
                routingCounts[l] = zip(mine, c).map { $0.saturatingAdd($1) }
            } else {
                routingCounts[l] = c
            }
        }
        for (k, m) in o.outputAbsMax { addOutputAbsMax(k, m) }
        tokens = tokens.saturatingAdd(o.tokens)
    }

    /// Removes one layer's statistics and returns them (a layer's are no longer needed once it is
    /// quantized, and its Gram matrices are the only large part).
    public func take(layer: Int) -> CalibrationStats {
        let out = CalibrationStats()
        for (k, s) in linears where k.layer == layer { out.linears[k] = s; linears[k] = nil }
        for (k, m) in outputAbsMax where k.layer == layer { out.outputAbsMax[k] = m; outputAbsMax[k] = nil }
        if let c = routingCounts[layer] { out.routingCounts[layer] = c }
        return out
    }
}
