import ArgumentParser
import Calibrate
import Model
import Formats
import Quantize
import Verify

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Quantize a checkpoint into one packed, mmap-able file or a GGUF file.",
        discussion: """
        Streams the checkpoint tensor by tensor (memory holds a few 64 MB chunks, not the model) and \
        writes OUT atomically: a temporary file that is fsynced and renamed only when complete, removed \
        on error or Ctrl-C. Recipes: int8, int4 (group-wise, --group-size), fp8, mixed, mxfp4, nvfp4, or a JSON file \
        (docs/RECIPES.md). Sensitive tensors (conv1d, A_log, D, dt_bias, norms, router, embeddings, \
        Mamba dt rows) stay in high precision unless the recipe says otherwise. With --calib or \
        --stats the weights are quantized from activation statistics (docs/CALIBRATION.md). \
        --format gguf writes llama.cpp's GGUF (OUT must end in .gguf) with the GGUF recipes f32, bf16, \
        f16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, mxfp4-moe or a JSON recipe of ggml types; a plan \
        GGUF cannot store is refused before anything is written (docs/GGUF.md). MODEL may also be a \
        GGUF file.
        """)

    @Argument(help: "A model directory, .safetensors file or GGUF file.")
    var model: String

    @Option(name: [.customShort("o"), .long], help: "The file to write (a packed file, with --format gguf a .gguf file), or the directory of a Hugging Face export (--format compressed-tensors).")
    var output: String?

    @Option(help: "Output format: packed (one nemo-convert file), gguf (llama.cpp; docs/GGUF.md), compressed-tensors or modelopt (Hugging Face directories vLLM, TensorRT-LLM and transformers load; docs/HF-EXPORTS.md).")
    var format: OutputFormat = .packed

    @Option(help: "Hugging Face export: bytes per safetensors shard (default 5 GB).")
    var shardBytes: Int?

    @Option(help: "Built-in recipe (int8, int4, fp8, mixed, mxfp4, nvfp4, nvidia-fp8, nvidia-nvfp4; for GGUF f32, bf16, f16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, mxfp4-moe) or a recipe JSON file.")
    var recipe = "int4"

    @Option(help: "INT4 group size (any divisor or not of the row width; the last group of a row may be partial).")
    var groupSize: Int?

    @Flag(help: "Print the resolved plan (scheme of every tensor) and write nothing.")
    var dryRun = false

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @OptionGroup(title: "Calibration") var calibration: CalibrationArguments

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        if !dryRun && output == nil { throw ValidationError("missing -o OUT (or use --dry-run)") }
        if let g = groupSize, !(1...QuantScheme.maxInt4Group).contains(g) {
            throw ValidationError("--group-size must be between 1 and \(QuantScheme.maxInt4Group)")
        }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if format == .gguf, let o = output, !dryRun, !o.hasSuffix(".gguf") {
            throw ValidationError("with --format gguf, -o must name a .gguf file (got \(o))")
        }
        if let b = shardBytes, b < 1 { throw ValidationError("--shard-bytes must be at least 1") }
        if shardBytes != nil && format.hfLayout == nil { throw ValidationError("--shard-bytes applies to Hugging Face exports (--format compressed-tensors)") }
    }

    func run() throws {
        do {
            TemporaryFiles.installSignalHandlers()
            if let t = threads { Threads.set(t) }
            let input = try ConvertInput(path: model)
            try checkOutputs(input.files, what: input.what)
            let map = input.map
            var r = try Recipe.load(recipe, groupSize: groupSize)
            // Hugging Face formats store one scheme per tensor: a built-in recipe quantizes Mamba
            // in_proj whole there (its dt rows with the x rows), as NVIDIA's checkpoints do.
            if format.hfLayout != nil, Recipe.Builtin(rawValue: recipe) != nil { r.wholeInProj = true }
            // ModelOpt holds one scale per tensor and no INT8: built-ins get per-tensor scales and
            // keep lm_head as stored (ModelOpt's own default).
            if format == .modelopt, Recipe.Builtin(rawValue: recipe) != nil { r.fitPerTensorExport() }
            // A group size that changes nothing would be silently ignored: say so instead.
            if let g = groupSize, try Recipe.load(recipe, groupSize: 1) == Recipe.load(recipe, groupSize: 2) {
                throw UsageError("--group-size \(g) has no effect: recipe '\(r.name)' has no grouped INT4 scheme to apply it to")
            }
            let conv = Converter(map: map, recipe: r)
            conv.threads = threads ?? Threads.count
            if let ms = ProcessInfo.processInfo.environment["NEMO_CONVERT_TEST_DELAY_MS"].flatMap(Double.init) {
                conv.delayPerTensor = ms / 1000
            }
            let c = map.config
            let ggufPlacement: (SinkTensor) throws(FormatError) -> GGUFPlacement = { t throws(FormatError) in try NemotronHGGUF.placement(t, config: c) }
            let hfLayout = format.hfLayout(kvCacheFP8: r.kvCacheFP8, exporter: [
                "name": "nemo-convert", "version": .string(NemoConvert.configuration.version)])
            let rules = format == .gguf ? GGUFWriter.rules(placement: ggufPlacement) : hfLayout?.rules ?? PackedWriter.sinkRules
            if format == .modelopt, !calibration.isCalibrated, map.runtimeScales.isEmpty,
               try conv.plans().contains(where: { $0.1.segments.contains { ModelOptExport.algorithm($0.scheme.description) != nil } }) {
                throw UsageError("--format modelopt stores a static input_scale beside every FP8/NVFP4 weight (vLLM and TensorRT-LLM read it), which comes from calibration: add --calib FILE or --stats FILE")
            }
            if dryRun { try printPlan(conv, rules: rules); return }
            var blobs: [(String, [UInt8])] = []
            if let t = input.tokenizerJSON { blobs.append(("tokenizer.json", t)) }
            var meta: JSONObject = ["producer": ["name": "nemo-convert", "version": .string(NemoConvert.configuration.version)],
                                    "model": .object(input.configJSON)]
            for (k, v) in input.provenance { meta[k] = v }
            let sink: TensorSink
            if format == .gguf {
                let fileType = GGUFRecipe(rawValue: recipe)?.bulkType ?? GGUFWriter.ggmlType(scheme: r.defaultScheme.description) ?? .f32
                let tokenizer = try input.ggufTokenizer(vocabSize: c.vocabSize)
                let kv = NemotronHGGUF.fileMetadata(map: map, ropeTheta: input.configJSON["rope_theta"]?.doubleValue,
                                                    modelName: input.name, fileType: NemotronHGGUF.fileType(fileType) ?? 0, tokenizer: tokenizer)
                sink = try GGUFWriter(path: output!, metadata: kv, placement: ggufPlacement)
            } else if let layout = hfLayout {
                sink = try makeSink(layout, directory: input.directory, keepReadBack: self.calibration.isCalibrated)
            } else {
                sink = try PackedWriter(path: output!)
            }
            let bar = ProgressLine(quiet: json)
            let rep: ConvertReport
            var calibration: CalibrationReport?
            if self.calibration.isCalibrated {
                (rep, calibration) = try calibrated(map: map, recipe: r, sink: sink, meta: meta, blobs: blobs, bar: bar)
            } else {
                rep = try conv.convert(into: sink, metadata: meta, blobs: blobs) { done, total, name in
                    bar.update("convert: \(done * 100 / max(1, total))%  \(name)")
                }
            }
            bar.finish()
            let gbps = Double(rep.inputBytes) / rep.seconds / 1e9
            if json {
                let o: JSONValue = [
                    "output": .string(rep.output), "input_bytes": .int(rep.inputBytes), "output_bytes": .int(rep.outputBytes),
                    "bits_per_weight": .number(rep.bitsPerWeight), "seconds": .number(rep.seconds),
                    "input_gb_per_s": .number(gbps), "peak_rss_bytes": .int(ResourceUsage.peakRSSBytes()),
                    "recipe": r.json, "calibration": calibration?.json ?? .null,
                    "tensors": .array(rep.tensors.map { e in
                        ["name": .string(e.name), "role": .string(e.role.rawValue), "shape": .array(e.shape.map { .int($0) }),
                         "scheme": .string(e.scheme), "input_bytes": .int(e.inputBytes), "output_bytes": .int(e.outputBytes)]
                    }),
                ]
                print(JSONWriter.string(o))
            } else {
                print("wrote \(rep.output)")
                print("  \(formatBytes(rep.inputBytes)) → \(formatBytes(rep.outputBytes)), \(String(format: "%.3f", rep.bitsPerWeight)) bits per weight (recipe \(r.name))")
                print("  \(String(format: "%.2f", rep.seconds)) s, \(String(format: "%.2f", gbps)) GB/s of input, peak RSS \(formatBytes(ResourceUsage.peakRSSBytes()))")
                if let c = calibration { printCalibration(c) }
            }
        } catch let e as ValidationError { throw e } catch { fail(error) }
    }

    /// A Hugging Face export's sink; it also copies the tokenizer, generation config and remote
    /// code of the model directory.
    private func makeSink(_ layout: any HFExportLayout, directory: String?, keepReadBack: Bool) throws -> TensorSink {
        let sink = try HFCheckpointSink(directory: output!, layout: layout, shardBytes: shardBytes ?? 5_000_000_000, keepReadBack: keepReadBack)
        if let dir = directory {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            for n in names.sorted() where OutputFormat.isCompanionFile(n) {
                try sink.addBlob(n, try MappedFile.contents(of: dir + "/" + n))
            }
        }
        return sink
    }

    /// No output may be an input or another output (README: "No output overwrites an input").
    private func checkOutputs(_ files: [String], what: String) throws {
        var inputs = files.map { (what: what, path: $0) }
        if let c = calibration.calib { inputs.append(("--calib", c)) }
        inputs += calibration.stats.map { ("--stats", $0) }
        if Recipe.Builtin(rawValue: recipe) == nil && GGUFRecipe(rawValue: recipe) == nil { inputs.append(("--recipe", recipe)) }
        var outputs: [(option: String, path: String)] = []
        if let o = output, !dryRun {
            // A Hugging Face export is a new or empty directory, so it can neither be nor hold an input.
            if format.hfLayout == nil { outputs.append(("-o", o)) } else {
                do { try HFCheckpointSink.checkOutput(o) } catch { throw OutputConflict("-o \(error.description)") }
            }
        }
        if let s = calibration.saveStats, !dryRun { outputs.append(("--save-stats", s)) }
        try OutputPath.check(outputs: outputs, inputs: inputs)
    }

    private func calibrated(map: TensorMap, recipe: Recipe, sink: TensorSink, meta: JSONObject,
                            blobs: [(String, [UInt8])], bar: ProgressLine) throws -> (ConvertReport, CalibrationReport) {
        let options = calibration.options
        let ctx = calibration.ctx, stats = calibration.stats
        let source: CalibratedConverter.Source
        if let text = calibration.calib {
            let input = try ModelInput(path: model)
            let ids = try input.tokenizer(override: nil).encode(try readText(text), addSpecialTokens: false)
            let windows = EvaluationWindows(tokens: ids, ctx: ctx, maxWindows: calibration.calibWindows)
            guard windows.count > 0 else {
                throw tooShort(text, tokens: ids.count, ctx: ctx)
            }
            source = .text(tokens: windows.tokens(0..<windows.count), windows: windows.count, ctx: ctx)
        } else {
            let merged = CalibrationStats()
            for path in stats {
                let loaded = try StatsFile.load(path, config: map.config)
                // Before any work: statistics of another model's widths would crash GPTQ or read past
                // the importance arrays.
                try StatsFile.check(loaded, against: map, file: path)
                try merged.merge(loaded, file: path)
            }
            source = .statistics(merged, path: stats.joined(separator: ","))
        }
        let cc = CalibratedConverter(map: map, recipe: recipe, options: options)
        cc.calibrationSource = calibration.calib ?? stats.joined(separator: ",")
        cc.converter.threads = threads ?? Threads.count
        return try cc.convert(into: sink, source: source, metadata: meta, blobs: blobs, saveStats: calibration.saveStats) { p in
            bar.update("calibrate (\(options.method.rawValue)): \(p.step)/\(p.steps)  \(p.what)")
        }
    }

    private func printCalibration(_ c: CalibrationReport) {
        let src = c.statsFrom.map { "statistics from \($0)" } ?? "\(c.windows) windows of \(c.ctx) tokens"
        print("  calibrated with \(c.method.rawValue)\(c.sequential ? " (sequential)" : ""), \(src), \(String(format: "%.2f", c.seconds)) s")
        if !c.rareExperts.isEmpty {
            let list = c.rareExperts.prefix(12).map { "L\($0.layer)/E\($0.expert) (\($0.tokens) tokens)" }.joined(separator: ", ")
            print("  experts real routing rarely picks (< 10% of a uniform share; calibrated on every token anyway): \(list)\(c.rareExperts.count > 12 ? ", …" : "")")
        }
        for (name, d) in c.extraDamping.sorted(by: { $0.key < $1.key }) {
            print("  \(name): Hessian needed damping \(d)")
        }
    }

    /// The resolved plan and, one line each, what in it the output format cannot store; exits 64
    /// when there is any (a recipe that does not fit the output is a usage error).
    private func printPlan(_ conv: Converter, rules: SinkRules) throws {
        let plans = try conv.plans()
        let violations = SinkCheck.violations(plans, rules: rules)
        if json {
            print(JSONWriter.string(.object([
                "recipe": conv.recipe.json,
                "source_quantization": conv.map.quantization?.json ?? .null,
                "tensors": .array(plans.map { t, p in
                    ["name": .string(t.name), "role": .string(t.role.rawValue), "shape": .array(t.data.shape.map { .int($0) }),
                     "source": .string(t.data.storageDescription),
                     "scheme": .string(p.summary), "segments": p.segmentsJSON, "bits": .int(p.storageBits)]
                }),
                "violations": .array(violations.map { .string($0) }),
            ])))
        } else {
            print("recipe \(conv.recipe.name): default \(conv.recipe.defaultScheme) for linear weights")
            if let q = conv.map.quantization { print("source: \(q.summary) checkpoint") }
            var bits = 0, n = 0
            for (t, p) in plans {
                bits += p.storageBits; n += t.data.elementCount
                let segs = p.segments.count > 1 ? "  [" + p.segments.map { "\($0.name):\($0.scheme)" }.joined(separator: " ") + "]" : ""
                let from = t.data.encoded.map { "  (from \($0.storageDescription))" } ?? ""
                print("  \(t.name)  \(t.data.shape)  \(p.summary)\(segs)\(from)")
            }
            print(String(format: "%.3f bits per weight over %d parameters", Double(bits) / Double(max(1, n)), n))
            if !violations.isEmpty {
                print("\(violations.count) tensor(s) a \(rules.format) cannot store:")
                for v in violations { print("  \(v)") }
            }
        }
        if !violations.isEmpty { throw SinkMismatch(format: rules.format, violations: violations) }
    }
}

func formatBytes(_ n: Int) -> String {
    let d = Double(n)
    if d >= 1e9 { return String(format: "%.2f GB", d / 1e9) }
    if d >= 1e6 { return String(format: "%.1f MB", d / 1e6) }
    if d >= 1e3 { return String(format: "%.1f kB", d / 1e3) }
    return "\(n) B"
}

import Foundation
