import Formats
import Model

/// What a calibrated conversion did, for the CLI and the packed file's metadata.
public struct CalibrationReport: Sendable {
    public struct RareExpert: Sendable, Equatable {
        public var layer: Int, expert: Int, tokens: Int
        /// Fraction of a uniform share (tokens × top_k / experts).
        public var share: Double
    }
    public var method: CalibrationMethod
    public var sequential: Bool
    public var windows: Int
    public var ctx: Int
    public var tokens: Int
    public var statsFrom: String?
    public var seconds: Double
    /// Seconds spent on each layer (forward + quantization).
    public var layerSeconds: [Double]
    public var rareExperts: [RareExpert]
    /// Layers whose Hessian needed more than the requested damping.
    public var extraDamping: [String: Double]

    public var json: JSONValue {
        var o: JSONObject = [
            "method": .string(method.rawValue), "sequential": .bool(sequential), "windows": .int(windows),
            "ctx": .int(ctx), "tokens": .int(tokens), "seconds": .number(seconds),
            "layer_seconds": .array(layerSeconds.map { .number($0) }),
            "rare_experts": .array(rareExperts.map {
                .object(["layer": .int($0.layer), "expert": .int($0.expert), "tokens": .int($0.tokens), "share": .number($0.share)])
            }),
        ]
        if let s = statsFrom { o["stats_from"] = .string(s) }
        if !extraDamping.isEmpty {
            var d = JSONObject()
            for (k, v) in extraDamping.sorted(by: { $0.key < $1.key }) { d[k] = .number(v) }
            o["extra_damping"] = .object(d)
        }
        return .object(o)
    }
}
