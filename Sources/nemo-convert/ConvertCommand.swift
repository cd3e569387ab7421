import ArgumentParser
import Calibrate
import Formats
import Quantize
import Verify

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Quantize a checkpoint into one packed, mmap-able file.",
        discussion: """
        Streams the checkpoint tensor by tensor (memory holds a few 64 MB chunks, not the model) and \
        writes OUT atomically: a temporary file that is fsynced and renamed only when complete, removed \
        on error or Ctrl-C. Recipes: int8, int4 (group-wise, --group-size), fp8, mixed, or a JSON file \
        (docs/RECIPES.md). Sensitive tensors (conv1d, A_log, D, dt_bias, norms, router, embeddings, \
        Mamba dt rows) stay in high precision unless the recipe says otherwise.
        """)

    @Argument(help: "A model directory or .safetensors file.")
    var model: String

    @Option(name: [.customShort("o"), .long], help: "The packed file to write.")
    var output: String?

    @Option(help: "Built-in recipe (int8, int4, fp8, mixed) or a recipe JSON file.")
    var recipe = "int4"

    @Option(help: "INT4 group size (any divisor or not of the row width; the last group of a row may be partial).")
    var groupSize: Int?

    @Flag(help: "Print the resolved plan (scheme of every tensor) and write nothing.")
    var dryRun = false

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        if !dryRun && output == nil { throw ValidationError("missing -o OUT (or use --dry-run)") }
        if let g = groupSize, g < 1 { throw ValidationError("--group-size must be positive") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        do {
            TemporaryFiles.installSignalHandlers()
            if let t = threads { Threads.set(t) }
            let ck = try Checkpoint(path: model)
            let map = try TensorMap(checkpoint: ck)
            let r = try Recipe.load(recipe, groupSize: groupSize)
            let conv = Converter(map: map, recipe: r)
            conv.threads = threads ?? Threads.count
            if let ms = ProcessInfo.processInfo.environment["NEMO_CONVERT_TEST_DELAY_MS"].flatMap(Double.init) {
                conv.delayPerTensor = ms / 1000
            }
            if dryRun { try printPlan(conv); return }
            let tokenizer = ck.directory + "/tokenizer.json"
            var blobs: [(String, [UInt8])] = []
            if fileExists(tokenizer) { blobs.append(("tokenizer.json", try MappedFile.contents(of: tokenizer))) }
            var sources: [JSONValue] = []
            for f in ck.files {
                sources.append(["file": .string(String(f.path.split(separator: "/").last ?? "")), "bytes": .int(f.file.count),
                                "header_xxh64": .string(XXH64.hex(XXH64.hash(UnsafeRawBufferPointer(rebasing: f.file.bytes[0..<f.dataOffset]))))])
            }
            let modelJSON = try JSONParser.parse(ck.configBytes)
            let meta: JSONObject = ["producer": ["name": "nemo-convert", "version": .string(NemoConvert.configuration.version)],
                                    "model": modelJSON, "sources": .array(sources)]
            let bar = ProgressLine(quiet: json)
            let rep = try conv.convert(to: output!, metadata: meta, blobs: blobs) { done, total, name in
                bar.update("convert: \(done * 100 / max(1, total))%  \(name)")
            }
            bar.finish()
            let gbps = Double(rep.inputBytes) / rep.seconds / 1e9
            if json {
                let o: JSONValue = [
                    "output": .string(rep.output), "input_bytes": .int(rep.inputBytes), "output_bytes": .int(rep.outputBytes),
                    "bits_per_weight": .number(rep.bitsPerWeight), "seconds": .number(rep.seconds),
                    "input_gb_per_s": .number(gbps), "peak_rss_bytes": .int(ResourceUsage.peakRSSBytes()),
                    "recipe": r.json,
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
            }
        } catch let e as ValidationError { throw e } catch { fail(error) }
    }

    private func printPlan(_ conv: Converter) throws {
        let plans = try conv.plans()
        if json {
            print(JSONWriter.string(.object([
                "recipe": conv.recipe.json,
                "tensors": .array(plans.map { t, p in
                    ["name": .string(t.name), "role": .string(t.role.rawValue), "shape": .array(t.view.shape.map { .int($0) }),
                     "scheme": .string(p.summary), "segments": p.segmentsJSON, "bits": .int(p.storageBits)]
                }),
            ])))
            return
        }
        print("recipe \(conv.recipe.name): default \(conv.recipe.defaultScheme) for linear weights")
        var bits = 0, n = 0
        for (t, p) in plans {
            bits += p.storageBits; n += t.view.elementCount
            let segs = p.segments.count > 1 ? "  [" + p.segments.map { "\($0.name):\($0.scheme)" }.joined(separator: " ") + "]" : ""
            print("  \(t.name)  \(t.view.shape)  \(p.summary)\(segs)")
        }
        print(String(format: "%.3f bits per weight over %d parameters", Double(bits) / Double(max(1, n)), n))
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
