/// Mamba-2 mixer dimensions. `innerSize` is heads × headDim; `expand` is never used to size anything.
public struct MambaDims: Equatable, Sendable {
    public var heads: Int          // Hm
    public var headDim: Int        // P
    public var groups: Int         // G
    public var stateSize: Int      // N
    public var convKernel: Int     // K
    public var chunkSize: Int
    public var convBias: Bool
    public var projBias: Bool
    /// Clamp applied to Δ after softplus; (0, ∞) — no clamp — when config.json does not say.
    public var timeStepLimit: (Float, Float)

    public var innerSize: Int { heads * headDim }
    public var convDim: Int { innerSize + 2 * groups * stateSize }
    public var inProjRows: Int { 2 * innerSize + 2 * groups * stateSize + heads }
    public var headsPerGroup: Int { heads / groups }
    public var normGroupSize: Int { innerSize / groups }

    /// Row segments of in_proj, in order: z [I], x [I], B [G·N], C [G·N], dt [Hm].
    public var inProjSegments: [(name: String, range: Range<Int>)] {
        let i = innerSize, gn = groups * stateSize
        return [("z", 0..<i), ("x", i..<2 * i), ("B", 2 * i..<2 * i + gn),
                ("C", 2 * i + gn..<2 * i + 2 * gn), ("dt", 2 * i + 2 * gn..<2 * i + 2 * gn + heads)]
    }

    public static func == (a: MambaDims, b: MambaDims) -> Bool {
        a.heads == b.heads && a.headDim == b.headDim && a.groups == b.groups && a.stateSize == b.stateSize
            && a.convKernel == b.convKernel && a.chunkSize == b.chunkSize && a.convBias == b.convBias
            && a.projBias == b.projBias && a.timeStepLimit.0 == b.timeStepLimit.0 && a.timeStepLimit.1 == b.timeStepLimit.1
    }
}

public struct AttentionDims: Equatable, Sendable {
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var bias: Bool
    public var qRows: Int { heads * headDim }
    public var kvRows: Int { kvHeads * headDim }
}

public struct MLPDims: Equatable, Sendable {
    public var intermediateSize: Int
    public var bias: Bool
}

public struct MoEDims: Equatable, Sendable {
    public var experts: Int
    public var topK: Int
    public var intermediateSize: Int
    public var sharedExperts: Int
    public var sharedIntermediateSize: Int
    public var nGroup: Int
    public var topkGroup: Int
    public var normTopkProb: Bool
    public var routedScalingFactor: Float
    /// Width of the latent space routed experts run in (Nemotron 3 Super); nil runs them at hidden size.
    public var latentSize: Int?
}
