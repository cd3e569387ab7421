import Formats
import Quantize

/// Bytes the weights of a model occupy in memory: exact for a packed file, and for a checkpoint or
/// preset what `convert` would store under a recipe (or the source dtypes without one).
public struct WeightSizing: Equatable, Sendable {
    /// Where weight bytes go, so a user sees what dominates (routed experts, in a MoE model).
    public enum Group: String, CaseIterable, Sendable {
        case embedding, lmHead = "lm_head", mamba, attention, mlp
        case routedExperts = "routed_experts", sharedExperts = "shared_experts", routerAndNorms = "router_and_norms"

        public init(_ role: TensorRole) {
            switch role {
            case .embedding: self = .embedding
            case .lmHead: self = .lmHead
            case .mambaInProj, .mambaConvWeight, .mambaConvBias, .mambaALog, .mambaD, .mambaDtBias, .mambaNorm, .mambaOutProj:
                self = .mamba
            case .attnQ, .attnK, .attnV, .attnO: self = .attention
            case .mlpUp, .mlpDown: self = .mlp
            case .expertUp, .expertDown, .latentIn, .latentOut: self = .routedExperts
            case .sharedUp, .sharedDown: self = .sharedExperts
            case .routerWeight, .routerBias, .layerNorm, .finalNorm: self = .routerAndNorms
            }
        }

        public var label: String {
            switch self {
            case .embedding: return "embedding"
            case .lmHead: return "lm_head"
            case .mamba: return "mamba"
            case .attention: return "attention"
            case .mlp: return "dense mlp"
            case .routedExperts: return "routed experts"
            case .sharedExperts: return "shared experts"
            case .routerAndNorms: return "router and norms"
            }
        }
    }

    /// What the figure describes: `packed file (recipe int4)`, `recipe int4`, `source dtypes`.
    public var basis: String
    public var parameters: Int
    /// Bytes resident once loaded: codes, scales, zero points and high-precision tensors, with
    /// compressed sections counted decoded.
    public var bytes: Int
    /// For a packed file, its size on disk (compressed high-precision sections are smaller).
    public var fileBytes: Int?
    public var byGroup: [Group: Int]

    public var bitsPerParameter: Double { parameters > 0 ? Double(bytes * 8) / Double(parameters) : 0 }

    /// A packed file: every section's decoded length, which is exactly what its scheme stores.
    public init(packed f: PackedFile) {
        var total = 0, params = 0
        var groups: [Group: Int] = [:]
        for t in f.tensors {
            let b = t.sections.values.reduce(0) { $0 + $1.rawLength }
            total += b
            params += t.shape.reduce(1, *)
            groups[Group(t.role), default: 0] += b
        }
        let recipe = f.header["recipe"]?["name"]?.stringValue
        basis = "packed file" + (recipe.map { " (recipe \($0))" } ?? "")
        parameters = params
        bytes = total
        fileBytes = f.file.count
        byGroup = groups
    }

    /// Tensors as `convert` would store them under `recipe` (its plan's storage bits, the same
    /// figure a packed file then holds), or as they are without a recipe.
    public init(tensors: [TensorEntry], recipe: Recipe?, config: ModelConfig) throws {
        var total = 0, params = 0
        var groups: [Group: Int] = [:]
        for t in tensors {
            let b: Int
            if let r = recipe {
                b = try r.plan(name: t.name, role: t.role, layer: t.layer, shape: t.shape, sourceDType: t.dtype, config: config)
                    .storageBits / 8
            } else {
                b = t.elementCount * t.dtype.byteSize
            }
            total += b
            params += t.elementCount
            groups[Group(t.role), default: 0] += b
        }
        basis = recipe.map { "recipe \($0.name)" } ?? "source dtypes"
        parameters = params
        bytes = total
        fileBytes = nil
        byGroup = groups
    }
}

extension TensorEntry {
    /// A checkpoint's tensors as its TensorMap binds them, with their stored dtypes.
    public static func checkpoint(_ map: TensorMap) -> [TensorEntry] {
        map.tensors.map { TensorEntry(name: $0.name, role: $0.role, layer: $0.layer, expert: $0.expert, shape: $0.data.shape, dtype: $0.data.dtype) }
    }
}
