import Formats

/// Hooks into the forward pass: calibration collects linear-layer input statistics here, tests
/// compare block outputs and routing against golden values. All pointers are valid only during
/// the call. Every method has an empty default, so an observer implements only what it needs.
public protocol ForwardObserver: AnyObject {
    /// The input rows a linear weight is about to multiply (`width` = its input dimension).
    func linearInput(layer: Int, role: TensorRole, expert: Int?, input: UnsafePointer<Float>, rows: Int, width: Int)
    /// The output rows a linear weight produced ([rows, width]); attention calls it for the K and V
    /// projections, whose range an FP8 KV cache's static scales (`k_scale`, `v_scale`) must hold.
    func linearOutput(layer: Int, role: TensorRole, output: UnsafePointer<Float>, rows: Int, width: Int)
    /// The router's choice for every token of the batch (`topK` indices and weights per token).
    func routing(layer: Int, tokens: Int, topK: Int, indices: UnsafePointer<Int32>, weights: UnsafePointer<Float>)
    /// The residual stream after block `layer`, [rows, hidden].
    func blockOutput(layer: Int, hidden: UnsafePointer<Float>, rows: Int, width: Int)
    /// A MoE layer's routed experts and the rows they choose from ([rows, experts.inputWidth],
    /// after the latent projection if the layer has one), once the routed pass is done and before
    /// the layer's output is formed. The observer may run any expert on any rows through
    /// `experts.run`; nothing it computes reaches the layer's output. Calibration uses this to
    /// feed every token to every expert (Calibrate's `EveryExpertFeed`).
    func routedExperts(_ experts: RoutedExperts, input: UnsafePointer<Float>, rows: Int) throws
}

extension ForwardObserver {
    public func linearInput(layer: Int, role: TensorRole, expert: Int?, input: UnsafePointer<Float>, rows: Int, width: Int) {}
    public func linearOutput(layer: Int, role: TensorRole, output: UnsafePointer<Float>, rows: Int, width: Int) {}
    public func routing(layer: Int, tokens: Int, topK: Int, indices: UnsafePointer<Int32>, weights: UnsafePointer<Float>) {}
    public func blockOutput(layer: Int, hidden: UnsafePointer<Float>, rows: Int, width: Int) {}
    public func routedExperts(_ experts: RoutedExperts, input: UnsafePointer<Float>, rows: Int) throws {}
}
