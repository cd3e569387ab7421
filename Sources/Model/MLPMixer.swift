import Formats

/// Nemotron-H's dense MLP: down(relu(up(u))²), no gate projection, no bias.
struct MLPMixer {
    let dims: MLPDims
    let hidden: Int
    let layer: Int

    func forward(_ u: UnsafePointer<Float>, batch: Batch, weights w: WeightProvider, scratch: Scratch,
                 observer: ForwardObserver?, into out: UnsafeMutablePointer<Float>) throws {
        let f = dims.intermediateSize
        let up = scratch.buffer("mlp.w_up", f * hidden), down = scratch.buffer("mlp.w_down", hidden * f)
        try w.load(.mlpUp, layer: layer, expert: nil, into: up.pointer)
        try w.load(.mlpDown, layer: layer, expert: nil, into: down.pointer)
        let mid = scratch.buffer("mlp.mid", batch.rows * f)
        SquaredReLUFFN(layer: layer, upRole: .mlpUp, downRole: .mlpDown, expert: nil)
            .forward(u, rows: batch.rows, inWidth: hidden, width: f, up: up.pointer, down: down.pointer,
                     mid: mid.pointer, observer: observer, into: out)
    }
}
