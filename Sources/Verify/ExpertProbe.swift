import Model
import Formats

/// Watches the original model's MoE layers during verification: records which experts each token
/// was routed to, and measures every routed expert's quantization error in isolation.
///
/// An expert's error is ‖E_q(x) − E_o(x)‖ / ‖E_o(x)‖ over tokens the original router sent to it,
/// with x the original model's input to that expert: the same tokens and inputs for both weight
/// sets, so the figure is the expert's own error, not drift accumulated upstream.
///
/// Each measurement runs the expert twice more (both weight sets) — in a small MoE model that
/// doubled the whole verify time — so only the first `tokenBudget` tokens routed to each expert
/// are measured; a few hundred tokens pin a relative error down to a few per cent, and after the
/// first batch or two an expert costs nothing more.
final class ExpertProbe: ForwardObserver {
    private let original: WeightProvider
    private let quantized: WeightProvider
    private let config: ModelConfig
    private let measureExperts: Bool
    let tokenBudget: Int
    /// Per MoE layer, per expert: the error on the measured tokens.
    private(set) var experts: [Int: [RelativeError]] = [:]
    /// Per MoE layer, per expert: every token the original routed to it.
    private(set) var routedTokens: [Int: [Int]] = [:]
    /// Routing of the layer that ran last: rows × topK expert indices.
    let routed = RoutingCapture()
    private let upO = FloatBuffer(count: 0), downO = FloatBuffer(count: 0)
    private let upQ = FloatBuffer(count: 0), downQ = FloatBuffer(count: 0)
    private let mid = FloatBuffer(count: 0), yO = FloatBuffer(count: 0), yQ = FloatBuffer(count: 0)
    private(set) var failure: Error?

    init(original: WeightProvider, quantized: WeightProvider, measureExperts: Bool, tokenBudget: Int = 512) {
        self.original = original
        self.quantized = quantized
        self.config = original.config
        self.measureExperts = measureExperts
        self.tokenBudget = tokenBudget
    }

    func routing(layer: Int, tokens: Int, topK: Int, indices: UnsafePointer<Int32>, weights: UnsafePointer<Float>) {
        routed.routing(layer: layer, tokens: tokens, topK: topK, indices: indices, weights: weights)
        guard let d = config.moe else { return }
        if routedTokens[layer] == nil { routedTokens[layer] = Array(repeating: 0, count: d.experts) }
        for i in 0..<(tokens * topK) where Int(indices[i]) < d.experts { routedTokens[layer]![Int(indices[i])] += 1 }
    }

    func linearInput(layer: Int, role: TensorRole, expert: Int?, input: UnsafePointer<Float>, rows all: Int, width: Int) {
        guard measureExperts, role == .expertUp, let e = expert, let d = config.moe, failure == nil else { return }
        if experts[layer] == nil { experts[layer] = Array(repeating: RelativeError(), count: d.experts) }
        let rows = min(all, tokenBudget - experts[layer]![e].rows)
        guard rows > 0 else { return }
        // The observer cannot throw; a failed load is kept and rethrown after the layer.
        do {
            let f = d.intermediateSize, x = width
            try original.load(.expertUp, layer: layer, expert: e, count: f * x, into: upO)
            try original.load(.expertDown, layer: layer, expert: e, count: x * f, into: downO)
            try quantized.load(.expertUp, layer: layer, expert: e, count: f * x, into: upQ)
            try quantized.load(.expertDown, layer: layer, expert: e, count: x * f, into: downQ)
            mid.resize(rows * f); yO.resize(rows * x); yQ.resize(rows * x)
            for (up, down, y) in [(upO, downO, yO), (upQ, downQ, yQ)] {
                Linear.forward(input, rows: rows, in: x, weight: up.pointer, out: f, into: mid.pointer)
                Kernels.reluSquared(mid.pointer, count: rows * f)
                Linear.forward(mid.pointer, rows: rows, in: f, weight: down.pointer, out: x, into: y.pointer)
            }
            experts[layer]![e].add(reference: yO.pointer, test: yQ.pointer, count: rows * x, rows: rows)
        } catch { failure = error }
    }

    func rethrow() throws { if let f = failure { throw f } }
}

/// The router's choice for the last MoE layer a model ran: rows × topK expert indices.
final class RoutingCapture: ForwardObserver {
    private(set) var layer = -1
    private(set) var topK = 0
    private(set) var indices: [Int32] = []

    func routing(layer: Int, tokens: Int, topK: Int, indices p: UnsafePointer<Int32>, weights: UnsafePointer<Float>) {
        self.layer = layer
        self.topK = topK
        indices = Array(UnsafeBufferPointer(start: p, count: tokens * topK))
    }

    /// How many of `other`'s chosen experts this one also chose, token by token (order within a
    /// token's top-k ignored), and how many choices there were.
    func overlap(with other: RoutingCapture) -> (same: Int, total: Int) {
        guard layer == other.layer, topK == other.topK, indices.count == other.indices.count, topK > 0 else { return (0, 0) }
        var same = 0
        for t in 0..<(indices.count / topK) {
            let a = indices[(t * topK)..<((t + 1) * topK)], b = other.indices[(t * topK)..<((t + 1) * topK)]
            for e in b where a.contains(e) { same += 1 }
        }
        return (same, indices.count)
    }
}
