#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Benchmarks
import Formats
import Quantize

struct BenchConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Conversion throughput and peak RSS on a generated Nemotron-3-Nano-shaped BF16 checkpoint.",
        discussion: """
        Writes a sharded BF16 checkpoint of about --gb GB with Nemotron-3-Nano-30B-A3B widths and its real \
        131,072-token vocabulary (pattern MEM*EM*E; the routed experts per MoE layer fill the budget), \
        measures memcpy, cold reads of its shards and durable writes, then converts it with each recipe twice — page cache \
        warm and cold — each time as a child `convert --json` process, and reports input GB/s and peak \
        RSS. The generated files are deleted afterwards unless --keep is given.
        """)

    @Option(help: "Work directory (default: a new folder under $TMPDIR or /tmp).")
    var dir: String?

    @Option(help: "Where the converted files go (default: --dir); /dev/shm takes the disk's write speed out of the figures.")
    var outDir: String?

    @Option(help: "Approximate size of the generated checkpoint in GB (at least 2).")
    var gb: Double = 4

    @Option(help: "Recipes to convert with, comma-separated.")
    var recipes = "int4,int8"

    @Option(help: "Threads per conversion.")
    var threads = 2

    @Option(help: "Output format of the conversions: packed or gguf (then use GGUF recipes: q4_0, q8_0, …).")
    var format = "packed"

    @Option(help: "With --format gguf: time this llama-quantize on the same weights (a BF16 GGUF of the checkpoint), same recipes and threads, in the same run.")
    var llamaQuantize: String?

    @Flag(help: "Keep the generated checkpoint.")
    var keep = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        guard gb >= 2 else { throw ValidationError("--gb must be at least 2 (embedding and lm_head alone are 1.4 GB)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard ["packed", "gguf"].contains(format) else { throw ValidationError("--format must be packed or gguf") }
        if llamaQuantize != nil && format != "gguf" { throw ValidationError("--llama-quantize needs --format gguf") }
    }

    func run() throws {
        let tmp = ProcessInfoLite.environment("TMPDIR") ?? "/tmp"
        let directory = dir ?? "\(tmp)/nemo-convert-bench-convert-\(getpid())"
        var stderr = StandardError()
        let r: ConvertBenchmark.Result
        do {
            let o = ConvertBenchmark.Options(directory: directory, gigabytes: gb,
                                             recipes: recipes.split(separator: ",").map(String.init),
                                             threads: threads, launcher: try .ownExecutable(), keep: keep,
                                             outputDirectory: outDir, format: format,
                                             peer: try llamaQuantize.map { try PeerQuantizer.llamaQuantize($0) })
            r = try ConvertBenchmark.run(o) { print($0, to: &stderr) }
        } catch { fail(error) }
        if json {
            print(JSONWriter.string(r.json, pretty: true))
            return
        }
        print("""
        checkpoint   \(r.pattern), vocabulary \(grouped(r.vocab)), \(r.routedExperts) routed experts per MoE layer, \(grouped(r.tensorCount)) tensors in \(r.shards) shards, \(humanBytes(r.dataBytes))
        memcpy       \(fixed(r.memcpyGBps, 2)) GB/s (512 MB buffers)
        disk read    \(fixed(r.diskReadGBps, 2)) GB/s (cold)
        disk write   \(fixed(r.diskWriteGBps, 2)) GB/s (with fsync, in \(r.outputDirectory))

        """, terminator: "")
        var rows = [["tool", "recipe", "cache", "GB/s in", "of memcpy", "of disk read", "GB/s out", "of disk write", "seconds", "CPU s", "peak RSS", "output", "bits/w"]]
        for c in r.runs {
            rows.append([c.tool, c.recipe, c.cache, fixed(c.inputGBps, 2), fixed(c.inputGBps / r.memcpyGBps, 2),
                         fixed(c.inputGBps / r.diskReadGBps, 2), fixed(c.outputGBps, 2), fixed(c.outputGBps / r.diskWriteGBps, 2), fixed(c.seconds, 2), fixed(c.cpuSeconds, 2), humanBytes(c.peakRSSBytes),
                         humanBytes(c.outputBytes), fixed(c.bitsPerWeight, 3)])
        }
        print(table(rows), terminator: "")
        print("\(r.threads) thread\(r.threads == 1 ? "" : "s") per conversion; " + (r.kept ? "kept in \(r.directory)" : "generated files deleted"))
    }
}
