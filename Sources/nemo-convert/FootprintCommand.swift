import ArgumentParser
import Formats
import Quantize
import Verify

struct FootprintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "footprint",
        abstract: "Memory a model needs at a context length, and whether it fits consumer GPUs and CPU RAM.",
        discussion: """
        Weights: exact stored bytes for a packed file; for a checkpoint or a --preset, the bytes \
        `convert --recipe` would store (codes, scales, zero points and high-precision tensors), or the \
        source dtypes without --recipe. KV cache: attention layers × 2 × kv heads × head_dim × context \
        × batch in --kv-dtype. Mamba state: conv (K − 1 inputs) and SSM state per layer and sequence, \
        FP32. Activations: an estimate for one prefill chunk, formula in the output. Fits are checked \
        against 8/12/16/24/32 GB GPUs (1 GiB reserved for the CUDA context and workspaces) and \
        16/32/64 GB of RAM (4 GiB reserved for the OS and runtime). Presets: \
        \(ModelPreset.allCases.map(\.rawValue).joined(separator: ", ")).
        """)

    @Argument(help: "A model directory, a .safetensors file or a packed file (or use --preset).")
    var model: String?

    @Option(help: "A released model by name, sized from its dimensions.")
    var preset: ModelPreset?

    @Option(help: "Size the weights under this recipe (int8, int4, fp8, mixed, mxfp4, nvfp4, or a recipe file); not for packed files.")
    var recipe: String?

    @Option(help: "INT4 group size for --recipe.")
    var groupSize: Int?

    @Option(help: "Context length in tokens (KV cache and activations).")
    var context = 8192

    @Option(help: "Sequences held at once.")
    var batch = 1

    @Option(help: "KV cache element type.")
    var kvDtype: KVCacheDType = .bf16

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        if (model == nil) == (preset == nil) { throw ValidationError("give either MODEL or --preset NAME") }
        guard context >= 1 else { throw ValidationError("--context must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if let g = groupSize, !(1...QuantScheme.maxInt4Group).contains(g) {
            throw ValidationError("--group-size must be between 1 and \(QuantScheme.maxInt4Group)")
        }
    }

    func run() throws {
        do {
            let r = try recipe.map { try Recipe.load($0, groupSize: groupSize) }
            let config: ModelConfig, weights: WeightSizing, name: String
            if let p = preset {
                config = p.config
                weights = try WeightSizing(tensors: p.tensors, recipe: r, config: config)
                name = "\(p.rawValue) (preset)"
            } else if let m = model, try ModelFormat.detect(m) == .packed {
                if recipe != nil {
                    throw ValidationError("\(m) is a packed file: its weights are already quantized, so --recipe does not apply")
                }
                let f = try PackedFile(path: m)
                config = f.config
                weights = WeightSizing(packed: f)
                name = m
            } else {
                let map = try TensorMap(checkpoint: try Checkpoint(path: model!))
                config = map.config
                weights = try WeightSizing(tensors: TensorEntry.checkpoint(map), recipe: r, config: config)
                name = model!
            }
            let fp = MemoryFootprint(config: config, weights: weights, context: context, batch: batch,
                                     kvDType: kvDtype)
            let fits = DeviceFit.all(fp.totalBytes)
            if json { print(JSONWriter.string(jsonReport(name: name, config: config, fp, fits))) } else { printTable(name: name, config: config, fp, fits) }
        } catch let e as ValidationError { throw e } catch { fail(error) }
    }

    private func jsonReport(name: String, config c: ModelConfig, _ fp: MemoryFootprint, _ fits: [DeviceFit]) -> JSONValue {
        var groups = JSONObject()
        for g in WeightSizing.Group.allCases { if let b = fp.weights.byGroup[g] { groups[g.rawValue] = .int(b) } }
        var w: JSONObject = ["basis": .string(fp.weights.basis), "parameters": .int(fp.weights.parameters),
                             "bytes": .int(fp.weights.bytes), "bits_per_parameter": .number(fp.weights.bitsPerParameter),
                             "by_group": .object(groups)]
        if let f = fp.weights.fileBytes { w["file_bytes"] = .int(f) }
        return [
            "model": .string(name), "pattern": .string(c.pattern), "layers": .int(c.layers.count),
            "context": .int(fp.context), "batch": .int(fp.batch),
            "weights": .object(w),
            "kv_cache": ["bytes": .int(fp.kvCacheBytes), "dtype": .string(fp.kvDType.rawValue),
                         "attention_layers": .int(c.count(.attention))],
            "mamba_state": ["bytes": .int(fp.mambaStateBytes), "conv_bytes": .int(fp.convStateBytes),
                            "ssm_bytes": .int(fp.ssmStateBytes), "dtype": "f32", "mamba_layers": .int(c.count(.mamba))],
            "activations": ["bytes": .int(fp.activationBytes), "prefill_chunk": .int(fp.prefillChunk),
                            "formula": .string(MemoryFootprint.activationFormula)],
            "total_bytes": .int(fp.totalBytes),
            "devices": .array(fits.map { f in
                ["name": .string(f.device.name), "kind": .string(f.device.kind.rawValue), "examples": .string(f.device.examples),
                 "capacity_bytes": .int(f.device.capacityBytes), "reserve_bytes": .int(f.device.reserveBytes),
                 "usable_bytes": .int(f.device.usableBytes), "fits": .bool(f.fits), "headroom_bytes": .int(f.headroomBytes)]
            }),
        ]
    }

    private func printTable(name: String, config c: ModelConfig, _ fp: MemoryFootprint, _ fits: [DeviceFit]) {
        let kinds = LayerKind.allCases.filter { c.count($0) > 0 }.map { "\(c.count($0)) \($0.name)" }.joined(separator: ", ")
        let params = Double(fp.weights.parameters)
        let count = params >= 1e9 ? String(format: "%.2f B", params / 1e9) : String(format: "%.1f M", params / 1e6)
        print("\(name): \(count) parameters, \(c.layers.count) layers (\(kinds))")
        print("context \(fp.context) tokens × batch \(fp.batch)")
        print("")
        let w = fp.weights
        print("\(pad("weights", 20))\(size(w.bytes))  \(String(format: "%.3f", w.bitsPerParameter)) bits/parameter, \(w.basis)"
              + (w.fileBytes.map { ", \(size($0, width: 0)) on disk" } ?? ""))
        for g in WeightSizing.Group.allCases {
            if let b = w.byGroup[g], b > 0 { print("  \(pad(g.label, 18))\(size(b))") }
        }
        if let a = c.attention {
            print("\(pad("KV cache", 20))\(size(fp.kvCacheBytes))  \(c.count(.attention)) attention layers × 2 × \(a.kvHeads) kv heads × \(a.headDim) × \(fp.context) tokens × \(fp.batch) × \(fp.kvDType.bytes) B (\(fp.kvDType.rawValue))")
        }
        if c.mamba != nil {
            let n = max(1, c.count(.mamba) * fp.batch)
            print("\(pad("Mamba state", 20))\(size(fp.mambaStateBytes))  \(c.count(.mamba)) layers × \(fp.batch): conv \(size(fp.convStateBytes / n, width: 0)) + SSM \(size(fp.ssmStateBytes / n, width: 0)) each, FP32")
        }
        print("\(pad("activations", 20))\(size(fp.activationBytes))  estimate for prefill chunks of \(fp.prefillChunk) tokens (formula in --json)")
        print("\(pad("total", 20))\(size(fp.totalBytes))")
        print("")
        print("\(pad("device", 12))\(lpad("capacity", 11))\(lpad("reserve", 11))\(lpad("usable", 11))  \(pad("fits", 5))\(lpad("headroom", 11))  typical")
        for f in fits {
            print("\(pad(f.device.name, 12))\(size(f.device.capacityBytes))\(size(f.device.reserveBytes))\(size(f.device.usableBytes))  \(pad(f.fits ? "yes" : "no", 5))\(size(f.headroomBytes, signed: true))  \(f.device.examples)")
        }
        print("")
        print("An \"8 GB\" card has 8 GiB. Reserved before the model: 1 GiB of a GPU (CUDA context, workspaces), 4 GiB of RAM (OS, runtime).")
    }

    /// Binary units, GiB down to KiB, right-aligned in `width` columns (0: no padding).
    private func size(_ b: Int, signed: Bool = false, width: Int = 11) -> String {
        let m = Double(abs(b)), sign = b < 0 ? "-" : (signed ? "+" : "")
        let s: String
        if m >= Double(1 << 30) { s = sign + String(format: "%.2f GiB", m / Double(1 << 30)) }
        else if m >= Double(1 << 20) { s = sign + String(format: "%.1f MiB", m / Double(1 << 20)) }
        else { s = sign + String(format: "%.1f KiB", m / 1024) }
        return lpad(s, width)
    }

    private func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }

    private func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
}
