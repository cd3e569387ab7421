import Formats

/// Hooks into the forward pass: calibration collects linear-layer input statistics here, tests
/// compare block outputs and routing against golden values. All pointers are valid only during
/// the call.
public protocol ForwardObserver: AnyObject {
    /// The input rows a linear weight is about to multiply (`width` = its input dimension).
    func linearInput(layer: Int, role: TensorRole, expert: Int?, input: UnsafePointer<Float>, rows: Int, width: Int)
    /// The router's choice for every token of the batch (`topK` indices and weights per token).
    func routing(layer: Int, tokens: Int, topK: Int, indices: UnsafePointer<Int32>, weights: UnsafePointer<Float>)
    /// The residual stream after block `layer`, [rows, hidden].
    func blockOutput(layer: Int, hidden: UnsafePointer<Float>, rows: Int, width: Int)
    /// Calibration asks MoE layers to also run every token through every routed expert, outside
    /// the real forward path, so experts that routing rarely picks still get statistics.
    var feedsEveryExpert: Bool { get }
    /// Inputs of that extra pass: `.expertUp` once per batch with `expert` nil (every expert sees
    /// the same rows), then `.expertDown` for each expert.
    func everyExpertInput(layer: Int, role: TensorRole, expert: Int?, input: UnsafePointer<Float>, rows: Int, width: Int)
}

extension ForwardObserver {
    public func linearInput(layer: Int, role: TensorRole, expert: Int?, input: UnsafePointer<Float>, rows: Int, width: Int) {}
    public func routing(layer: Int, tokens: Int, topK: Int, indices: UnsafePointer<Int32>, weights: UnsafePointer<Float>) {}
    public func blockOutput(layer: Int, hidden: UnsafePointer<Float>, rows: Int, width: Int) {}
    public var feedsEveryExpert: Bool { false }
    public func everyExpertInput(layer: Int, role: TensorRole, expert: Int?, input: UnsafePointer<Float>, rows: Int, width: Int) {}
}
