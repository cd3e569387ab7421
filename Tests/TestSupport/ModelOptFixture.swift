import Foundation
import Formats
import Quantize

/// Checkpoints in NVIDIA ModelOpt's export layout, made from a fixture by our own codecs: the
/// weights the naive fp8-channel recipe quantizes become F8_E4M3 (or packed NVFP4) codes with
/// their scales and an `input_scale` beside them, everything else stays as stored.
public enum ModelOptFixture {
    public enum Encoding { case fp8Channel, fp8Tensor, nvfp4 }

    /// Which weights a fixture re-encodes: what the naive fp8-channel recipe quantizes (every
    /// projection and expert; not lm_head, router, embeddings or vectors).
    public static func quantizedNames(_ model: String) throws -> Set<String> {
        let recipe = try Recipe.load(Fixtures.root + "/../recipes/naive-fp8-channel.json")
        let c = Converter(map: try TensorMap(checkpoint: try Checkpoint(path: model)), recipe: recipe)
        return Set(try c.plans().filter { $0.1.summary == "fp8-channel" }.map { $0.0.source })
    }

    /// `model` re-encoded the way ModelOpt's export stores it, in `dir/name`. `quantConfig` goes
    /// into config.json as `quantization_config` (nil: none); `side` is written as
    /// hf_quant_config.json; `mutate` may change the tensors before they are written.
    public static func write(dir: String, _ name: String, from model: String, _ enc: Encoding, quantConfig: JSONValue?, side: JSONValue? = nil,
                  extra: [(TensorDeclaration, [UInt8])] = [],
                  mutate: (inout [(TensorDeclaration, [UInt8])]) -> Void = { _ in }) throws -> String {
        let out = dir + "/" + name
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: model + "/tokenizer.json", toPath: out + "/tokenizer.json")
        var config = try JSONParser.parse(try MappedFile.contents(of: model + "/config.json")).objectValue!
        if let q = quantConfig { config["quantization_config"] = q }
        try Data(JSONWriter.bytes(.object(config))).write(to: URL(fileURLWithPath: out + "/config.json"))
        if let s = side { try Data(JSONWriter.bytes(s)).write(to: URL(fileURLWithPath: out + "/hf_quant_config.json")) }
        let ck = try Checkpoint(path: model)
        let quantized = try quantizedNames(model)
        var tensors: [(TensorDeclaration, [UInt8])] = []
        for n in ck.tensorNames {
            let v = ck.view(n)!
            guard quantized.contains(n) else {
                tensors.append((TensorDeclaration(name: n, dtype: v.dtype, shape: v.shape), Array(v.bytes)))
                continue
            }
            let rows = v.shape[0], cols = v.shape[1]
            let w = try v.floats()
            let stem = String(n.dropLast("weight".count))
            switch enc {
            case .fp8Channel, .fp8Tensor:
                let codec = FP8Codec(perTensor: enc == .fp8Tensor)
                var codes = [UInt8](repeating: 0, count: rows * cols)
                var scales = [Float](repeating: 0, count: rows)
                let rowScale = FP8E4M3.scale(absMax: FP8E4M3.absMax(w, count: w.count))
                codes.withUnsafeMutableBytes { c in scales.withUnsafeMutableBytes { s in
                    codec.encode(w, cols: cols, rows: 0..<rows, rowScale: rowScale, codes: c.baseAddress!, scales: s.baseAddress, zeroPoints: nil)
                } }
                tensors.append((TensorDeclaration(name: n, dtype: .f8e4m3, shape: [rows, cols]), codes))
                let scale: [Float] = enc == .fp8Tensor ? [rowScale] : scales
                tensors.append((TensorDeclaration(name: stem + "weight_scale", dtype: .f32, shape: enc == .fp8Tensor ? [] : [rows, 1]),
                                scale.withUnsafeBytes { Array($0) }))
            case .nvfp4:
                let codec = NVFP4Codec()
                var codes = [UInt8](repeating: 0, count: rows * cols / 2)
                var scales = [UInt8](repeating: 0, count: rows * cols / 16)
                let g = NVFP4Codec.globalScale(absMax: FP8E4M3.absMax(w, count: w.count))
                codes.withUnsafeMutableBytes { c in scales.withUnsafeMutableBytes { s in
                    codec.encode(w, cols: cols, rows: 0..<rows, rowScale: g, codes: c.baseAddress!, scales: s.baseAddress, zeroPoints: nil)
                } }
                tensors.append((TensorDeclaration(name: n, dtype: .u8, shape: [rows, cols / 2]), codes))
                tensors.append((TensorDeclaration(name: stem + "weight_scale", dtype: .f8e4m3, shape: [rows, cols / 16]), scales))
                tensors.append((TensorDeclaration(name: stem + "weight_scale_2", dtype: .f32, shape: []), [g].withUnsafeBytes { Array($0) }))
            }
            tensors.append((TensorDeclaration(name: stem + "input_scale", dtype: .f32, shape: []), [Float(0.0123)].withUnsafeBytes { Array($0) }))
        }
        tensors += extra
        mutate(&tensors)
        try SafetensorsWriter.write(to: out + "/model.safetensors", tensors: tensors)
        return out
    }

}
