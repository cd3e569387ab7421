/// The four block kinds of a Nemotron-H layer, with the pattern letter `hybrid_override_pattern` uses.
public enum LayerKind: String, CaseIterable, Sendable, Codable {
    case mamba = "M"
    case attention = "*"
    case mlp = "-"
    case moe = "E"

    public var name: String {
        switch self {
        case .mamba: return "mamba"
        case .attention: return "attention"
        case .mlp: return "mlp"
        case .moe: return "moe"
        }
    }

    /// Every spelling of `layers_block_type` seen in the wild: transformers 4.x writes
    /// mamba/attention/mlp/moe, transformers 5 remaps to linear_attention/full_attention.
    public init?(blockType: String) {
        switch blockType {
        case "mamba", "linear_attention", "M": self = .mamba
        case "attention", "full_attention", "*": self = .attention
        case "mlp", "-": self = .mlp
        case "moe", "E": self = .moe
        default: return nil
        }
    }
}
