import Formats

/// Nemotron-H's dense MLP: down(relu(up(u))²), no gate projection, no bias.
struct MLPMixer {
    let dims: MLPDims
    let hidden: Int
    let layer: Int

    func forward(_ u: UnsafePointer<Float>, batch: Batch, weights w: WeightProvider, scratch: Scratch,
                 observer: ForwardObserver?, into out: UnsafeMutablePointer<Float>) throws {
        let rows = batch.rows, f = dims.intermediateSize
        let wt = scratch.buffer("mlp.w", f * hidden)
        let mid = scratch.buffer("mlp.mid", rows * f)
        try w.load(.mlpUp, layer: layer, expert: nil, into: wt.pointer)
        observer?.linearInput(layer: layer, role: .mlpUp, expert: nil, input: u, rows: rows, width: hidden)
        Linear.forward(u, rows: rows, in: hidden, weight: wt.pointer, out: f, into: mid.pointer)
        Kernels.reluSquared(mid.pointer, count: rows * f)
        try w.load(.mlpDown, layer: layer, expert: nil, into: wt.pointer)
        observer?.linearInput(layer: layer, role: .mlpDown, expert: nil, input: mid.pointer, rows: rows, width: f)
        Linear.forward(mid.pointer, rows: rows, in: f, weight: wt.pointer, out: hidden, into: out)
    }
}
