import Formats

/// The mixture-of-experts block: sigmoid router, top-k routed squared-ReLU experts (optionally in
/// a latent space), plus a shared expert on the same normed input.
///
/// Experts are loaded one at a time, so peak memory holds one expert's FP32 weights, not 128.
struct MoEMixer {
    let dims: MoEDims
    let hidden: Int
    let layer: Int

    func forward(_ u: UnsafePointer<Float>, batch: Batch, weights w: WeightProvider, scratch: Scratch,
                 observer: ForwardObserver?, into out: UnsafeMutablePointer<Float>) throws {
        let d = dims, rows = batch.rows, E = d.experts, k = d.topK, F = d.intermediateSize
        let X = d.latentSize ?? hidden

        // Router, in FP32.
        let gw = scratch.buffer("moe.gate", E * hidden)
        try w.load(.routerWeight, layer: layer, expert: nil, into: gw.pointer)
        let gb = scratch.buffer("moe.gate_bias", E)
        try w.load(.routerBias, layer: layer, expert: nil, into: gb.pointer)
        observer?.linearInput(layer: layer, role: .routerWeight, expert: nil, input: u, rows: rows, width: hidden)
        let logits = scratch.buffer("moe.logits", rows * E)
        Linear.forward(u, rows: rows, in: hidden, weight: gw.pointer, out: E, into: logits.pointer)
        var indices = [Int32](repeating: 0, count: rows * k)
        var weights = [Float](repeating: 0, count: rows * k)
        let router = Router(dims: d)
        let s1 = scratch.buffer("moe.s1", E), s2 = scratch.buffer("moe.s2", E)
        indices.withUnsafeMutableBufferPointer { ib in
            weights.withUnsafeMutableBufferPointer { wb in
                for r in 0..<rows {
                    router.route(logits: logits.pointer + r * E, bias: gb.pointer, scores: s1.pointer, choice: s2.pointer,
                                 indices: ib.baseAddress! + r * k, weights: wb.baseAddress! + r * k)
                }
                observer?.routing(layer: layer, tokens: rows, topK: k, indices: ib.baseAddress!, weights: wb.baseAddress!)
            }
        }

        // Tokens per expert.
        var tokens = [[Int32]](repeating: [], count: E)
        var tokenWeight = [[Float]](repeating: [], count: E)
        for r in 0..<rows {
            for j in 0..<k {
                let e = Int(indices[r * k + j])
                tokens[e].append(Int32(r)); tokenWeight[e].append(weights[r * k + j])
            }
        }

        // Optional latent projection in.
        var xin = u
        if d.latentSize != nil {
            let lw = scratch.buffer("moe.latent_w", X * hidden)
            try w.load(.latentIn, layer: layer, expert: nil, into: lw.pointer)
            let lat = scratch.buffer("moe.latent_x", rows * X)
            observer?.linearInput(layer: layer, role: .latentIn, expert: nil, input: u, rows: rows, width: hidden)
            Linear.forward(u, rows: rows, in: hidden, weight: lw.pointer, out: X, into: lat.pointer)
            xin = UnsafePointer(lat.pointer)
        }

        let routed = scratch.buffer("moe.routed", rows * X)
        routed.zero()
        let up = scratch.buffer("moe.w_up", F * X), down = scratch.buffer("moe.w_down", X * F)
        let gx = scratch.buffer("moe.gx", rows * X), mid = scratch.buffer("moe.mid", rows * F)
        let gy = scratch.buffer("moe.gy", rows * X)
        for e in 0..<E where !tokens[e].isEmpty {
            let n = tokens[e].count
            try w.load(.expertUp, layer: layer, expert: e, into: up.pointer)
            try w.load(.expertDown, layer: layer, expert: e, into: down.pointer)
            for (i, r) in tokens[e].enumerated() { (gx.pointer + i * X).update(from: xin + Int(r) * X, count: X) }
            SquaredReLUFFN(layer: layer, upRole: .expertUp, downRole: .expertDown, expert: e)
                .forward(gx.pointer, rows: n, inWidth: X, width: F, up: up.pointer, down: down.pointer,
                         mid: mid.pointer, observer: observer, into: gy.pointer)
            for (i, r) in tokens[e].enumerated() {
                let wgt = tokenWeight[e][i]
                let dst = routed.pointer + Int(r) * X, src = gy.pointer + i * X
                for c in 0..<X { dst[c] += wgt * src[c] }
            }
        }

        try observer?.routedExperts(RoutedExperts(dims: d, hidden: hidden, layer: layer, weights: w, scratch: scratch),
                                    input: xin, rows: rows)

        if d.latentSize != nil {
            let lw = scratch.buffer("moe.latent_w", hidden * X)
            try w.load(.latentOut, layer: layer, expert: nil, into: lw.pointer)
            observer?.linearInput(layer: layer, role: .latentOut, expert: nil, input: routed.pointer, rows: rows, width: X)
            Linear.forward(routed.pointer, rows: rows, in: X, weight: lw.pointer, out: hidden, into: out)
        } else {
            out.update(from: routed.pointer, count: rows * hidden)
        }

        if d.sharedExperts > 0 {
            let S = d.sharedIntermediateSize
            let su = scratch.buffer("moe.shared_up", S * hidden), sd = scratch.buffer("moe.shared_down", hidden * S)
            try w.load(.sharedUp, layer: layer, expert: nil, into: su.pointer)
            try w.load(.sharedDown, layer: layer, expert: nil, into: sd.pointer)
            let smid = scratch.buffer("moe.shared_mid", rows * S)
            SquaredReLUFFN(layer: layer, upRole: .sharedUp, downRole: .sharedDown, expert: nil)
                .forward(u, rows: rows, inWidth: hidden, width: S, up: su.pointer, down: sd.pointer,
                         mid: smid.pointer, observer: observer, into: out, accumulate: true)
        }
    }
}

/// One MoE layer's routed experts, as `ForwardObserver.routedExperts` hands them out: any expert
/// can be run on any rows, with the same weights and kernels as the forward pass.
public struct RoutedExperts {
    public let layer: Int
    /// Number of routed experts.
    public let count: Int
    /// Width of an expert's input and output rows: the latent size, or hidden without one.
    public let inputWidth: Int
    /// Width of an expert's intermediate activations.
    public let intermediateSize: Int
    /// The forward pass's named buffers; observers may take their own names from it.
    public let scratch: Scratch
    let weights: WeightProvider

    init(dims: MoEDims, hidden: Int, layer: Int, weights: WeightProvider, scratch: Scratch) {
        self.layer = layer
        self.count = dims.experts
        self.inputWidth = dims.latentSize ?? hidden
        self.intermediateSize = dims.intermediateSize
        self.weights = weights
        self.scratch = scratch
    }

    /// Runs expert `expert` on x [rows, inputWidth]: its squared-ReLU activations land in `mid`
    /// [rows, intermediateSize] (the down projection's input) and its output in `out`
    /// [rows, inputWidth]. Loads the expert's weights into the scratch buffers the routed pass
    /// uses, so peak memory stays one expert.
    public func run(expert: Int, _ x: UnsafePointer<Float>, rows: Int, mid: UnsafeMutablePointer<Float>,
                    into out: UnsafeMutablePointer<Float>) throws {
        let X = inputWidth, F = intermediateSize
        let up = scratch.buffer("moe.w_up", F * X), down = scratch.buffer("moe.w_down", X * F)
        try weights.load(.expertUp, layer: layer, expert: expert, into: up.pointer)
        try weights.load(.expertDown, layer: layer, expert: expert, into: down.pointer)
        SquaredReLUFFN(layer: layer, upRole: .expertUp, downRole: .expertDown, expert: expert)
            .forward(x, rows: rows, inWidth: X, width: F, up: up.pointer, down: down.pointer,
                     mid: mid, observer: nil, into: out)
    }
}
