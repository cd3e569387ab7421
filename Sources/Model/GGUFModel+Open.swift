import Formats
import Quantize

extension GGUFModel {
    /// Opens a GGUF file with Quantize's ggml block decoder (`GGMLDequantize`): every type
    /// llama.cpp writes for these models.
    public static func open(_ path: String, allowUnexpected: Bool = false) throws(FormatError) -> GGUFModel {
        try GGUFModel(path: path, decoder: { t, src, n, out in GGMLDequantize.decode(t, src, blocks: n, into: out) },
                      decodable: GGMLDequantize.decodable, allowUnexpected: allowUnexpected)
    }
}
