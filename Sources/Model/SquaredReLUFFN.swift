import Formats

/// down(relu(up(x))²) with no gate and no bias: Nemotron-H's dense MLP, its shared expert and
/// every routed expert are this one function with different weights.
struct SquaredReLUFFN {
    let layer: Int
    let upRole: TensorRole
    let downRole: TensorRole
    let expert: Int?

    /// x [rows, inWidth] → out [rows, inWidth]; `width` is the intermediate size. `mid` holds
    /// rows × width floats. With `accumulate` the result is added to `out`.
    func forward(_ x: UnsafePointer<Float>, rows: Int, inWidth: Int, width: Int,
                 up: UnsafePointer<Float>, down: UnsafePointer<Float>, mid: UnsafeMutablePointer<Float>,
                 observer: ForwardObserver?, into out: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        observer?.linearInput(layer: layer, role: upRole, expert: expert, input: x, rows: rows, width: inWidth)
        Linear.forward(x, rows: rows, in: inWidth, weight: up, out: width, into: mid)
        Kernels.reluSquared(mid, count: rows * width)
        observer?.linearInput(layer: layer, role: downRole, expert: expert, input: mid, rows: rows, width: width)
        Linear.forward(mid, rows: rows, in: width, weight: down, out: inWidth, into: out, accumulate: accumulate)
    }
}
