import Formats
import Model

/// Calibration's extra pass through a MoE layer: every token of the batch through every routed
/// expert, so experts that real routing rarely picks still get input statistics (GPTQ needs a
/// Hessian for each). The experts' outputs are thrown away — the layer's output, and so every
/// later layer's input, keeps real routing.
///
/// The model knows nothing of this: it hands its experts to the observer
/// (`ForwardObserver.routedExperts`), and `StatsCollector` runs this feed from there.
enum EveryExpertFeed {
    /// Reports the shared input once as `.expertUp` (expert nil: every expert sees the same rows),
    /// then each expert's down-projection input as `.expertDown`, through `record`.
    static func run(_ experts: RoutedExperts, input: UnsafePointer<Float>, rows: Int,
                    record: (_ role: TensorRole, _ expert: Int?, _ input: UnsafePointer<Float>, _ width: Int) -> Void) throws {
        let X = experts.inputWidth, F = experts.intermediateSize
        record(.expertUp, nil, input, X)
        let mid = experts.scratch.buffer("moe.feed_mid", rows * F), sink = experts.scratch.buffer("moe.feed_out", rows * X)
        for e in 0..<experts.count {
            try experts.run(expert: e, input, rows: rows, mid: mid.pointer, into: sink.pointer)
            record(.expertDown, e, mid.pointer, F)
        }
    }
}
