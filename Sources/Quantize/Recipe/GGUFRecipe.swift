import Formats

/// Recipes named after llama.cpp's file types, for `convert --format gguf` (they write packed
/// files too): every linear weight and expert in one ggml type, one type per tensor (the Mamba dt
/// rows of in_proj follow the rest of the tensor, since GGUF cannot mix), and what llama.cpp keeps
/// in F32 kept in F32 — norms, conv1d, A_log (stored as ssm_a), D, dt_bias, the router and its
/// correction bias. token_embd and output are stated per recipe: the float recipes keep them in
/// their type; the 4- and 5-bit ones store them as q8_0 (llama.cpp's own quantizer would use
/// q6_K for output, a type we do not encode); `mxfp4-moe` puts routed experts in ggml MXFP4 and
/// every other matrix in q8_0, like llama.cpp's MXFP4_MOE.
public enum GGUFRecipe: String, CaseIterable, Sendable {
    case f32, f16, bf16
    case q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl
    case mxfp4Moe = "mxfp4-moe"

    /// The scheme of the linear weights (experts included, except for mxfp4-moe's).
    public var linearScheme: String {
        switch self {
        case .mxfp4Moe: return "q8_0"
        default: return rawValue
        }
    }

    /// token_embd and output.
    public var embeddingScheme: String {
        switch self {
        case .f32, .f16, .bf16, .q8_0: return rawValue
        default: return "q8_0"
        }
    }

    /// The ggml type most of the weights are stored in (llama.cpp's `general.file_type`).
    public var bulkType: GGMLType {
        switch self {
        case .mxfp4Moe: return .mxfp4
        default: return GGUFWriter.storableSchemes[rawValue]!
        }
    }

    public var recipe: Recipe {
        typealias Rule = Recipe.Rule
        let s = linearScheme, e = embeddingScheme
        var rules: [Rule] = [TensorRole.mambaConvWeight, .mambaConvBias, .mambaALog, .mambaD, .mambaDtBias,
                             .layerNorm, .finalNorm, .mambaNorm, .routerWeight, .routerBias].map { Rule(role: $0, scheme: "f32") }
        rules += [Rule(role: .mambaInProj, segment: "dt", scheme: s), Rule(role: .embedding, scheme: e), Rule(role: .lmHead, scheme: e)]
        if self == .mxfp4Moe {
            rules += [Rule(role: .expertUp, scheme: "gguf-mxfp4"), Rule(role: .expertDown, scheme: "gguf-mxfp4")]
        }
        return Recipe(name: rawValue, defaultScheme: QuantScheme(s)!, rules: rules)
    }
}
