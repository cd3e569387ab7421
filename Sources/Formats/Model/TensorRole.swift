/// What a tensor does in the model. Recipes select tensors by role, and the forward pass finds
/// its weights by role, so neither depends on how a checkpoint happened to name things.
public enum TensorRole: String, CaseIterable, Sendable, Codable {
    case embedding, lmHead = "lm_head", finalNorm = "final_norm", layerNorm = "layer_norm"
    case mambaInProj = "mamba_in_proj", mambaConvWeight = "mamba_conv1d", mambaConvBias = "mamba_conv1d_bias"
    case mambaALog = "mamba_a_log", mambaD = "mamba_d", mambaDtBias = "mamba_dt_bias"
    case mambaNorm = "mamba_norm", mambaOutProj = "mamba_out_proj"
    case attnQ = "attn_q", attnK = "attn_k", attnV = "attn_v", attnO = "attn_o"
    case mlpUp = "mlp_up", mlpDown = "mlp_down"
    case routerWeight = "router", routerBias = "router_bias"
    case expertUp = "expert_up", expertDown = "expert_down"
    case sharedUp = "shared_up", sharedDown = "shared_down"
    case latentIn = "latent_in", latentOut = "latent_out"

    /// Hub name of this role's tensor, without the `backbone.` prefix.
    public func hubName(layer: Int?, expert: Int?) -> String {
        let l = "layers.\(layer ?? -1)"
        switch self {
        case .embedding: return "embeddings.weight"
        case .lmHead: return "lm_head.weight"
        case .finalNorm: return "norm_f.weight"
        case .layerNorm: return "\(l).norm.weight"
        case .mambaInProj: return "\(l).mixer.in_proj.weight"
        case .mambaConvWeight: return "\(l).mixer.conv1d.weight"
        case .mambaConvBias: return "\(l).mixer.conv1d.bias"
        case .mambaALog: return "\(l).mixer.A_log"
        case .mambaD: return "\(l).mixer.D"
        case .mambaDtBias: return "\(l).mixer.dt_bias"
        case .mambaNorm: return "\(l).mixer.norm.weight"
        case .mambaOutProj: return "\(l).mixer.out_proj.weight"
        case .attnQ: return "\(l).mixer.q_proj.weight"
        case .attnK: return "\(l).mixer.k_proj.weight"
        case .attnV: return "\(l).mixer.v_proj.weight"
        case .attnO: return "\(l).mixer.o_proj.weight"
        case .mlpUp: return "\(l).mixer.up_proj.weight"
        case .mlpDown: return "\(l).mixer.down_proj.weight"
        case .routerWeight: return "\(l).mixer.gate.weight"
        case .routerBias: return "\(l).mixer.gate.e_score_correction_bias"
        case .expertUp: return "\(l).mixer.experts.\(expert ?? -1).up_proj.weight"
        case .expertDown: return "\(l).mixer.experts.\(expert ?? -1).down_proj.weight"
        case .sharedUp: return "\(l).mixer.shared_experts.up_proj.weight"
        case .sharedDown: return "\(l).mixer.shared_experts.down_proj.weight"
        case .latentIn: return "\(l).mixer.fc1_latent_proj.weight"
        case .latentOut: return "\(l).mixer.fc2_latent_proj.weight"
        }
    }

    /// Matrices a quantizer may touch; everything else is a vector or a conv kernel.
    public var isLinear: Bool {
        switch self {
        case .embedding, .lmHead, .mambaInProj, .mambaOutProj, .attnQ, .attnK, .attnV, .attnO, .mlpUp, .mlpDown,
             .routerWeight, .expertUp, .expertDown, .sharedUp, .sharedDown, .latentIn, .latentOut:
            return true
        default: return false
        }
    }
}
