/// How calibrated conversion chooses quantized values (README "Calibration" compares them).
public enum CalibrationMethod: String, CaseIterable, Sendable {
    /// Round to nearest with absmax scales: what an uncalibrated conversion does. Calibration then
    /// only measures (FP8 input scales, routing counts, statistics for later runs).
    case rtn
    /// Clipping search per row or group, weighted by each input channel's E[x²].
    case mse
    /// Activation-aware per-input-channel scaling folded into the producing norm, then clipping search.
    case awq
    /// Column-by-column error compensation with the inputs' Hessian (Frantar et al.).
    case gptq

    /// Whether the method needs Gram matrices (full XᵀX), not just per-channel statistics.
    public var needsGram: Bool { self == .gptq }
}

public struct CalibrationOptions: Sendable {
    public var method: CalibrationMethod = .gptq
    /// Quantize layer i before computing layer i+1's inputs (errors compensated, not compounded unseen).
    public var sequential = true
    /// Windows per forward batch (memory: activations scale with it).
    public var batchWindows = 16
    /// GPTQ damping, as a fraction of the Hessian's mean diagonal.
    public var damping = 0.01
    public var blockSize = 128
    /// GPTQ on activation-aware-scaled weights (AWQ's folding first, then GPTQ on W·diag(s) with
    /// the correspondingly scaled Hessian).
    public var foldScales = false
    /// GPTQ act-order: quantize columns by decreasing Hessian diagonal (with static group scales).
    public var actOrder = true
    /// Run every token through every routed expert as well while collecting.
    public var feedEveryExpert = true
    /// Experts that real routing gives less than this fraction of a uniform share are reported.
    public var rareExpertShare = 0.1

    public init() {}
}
