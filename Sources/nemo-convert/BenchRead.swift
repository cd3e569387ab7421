#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Benchmarks
import Formats

struct BenchRead: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Time opening, validating and converting a generated Nemotron-3-Nano-shaped BF16 checkpoint.",
        discussion: """
        Writes a sharded BF16 checkpoint of about --gb GB with Nemotron-3-Nano-30B-A3B dimensions, plus the \
        full released tensor layout with its data left as holes (no disk space), then reports open + \
        validate time, BF16→F32 conversion and memcpy bandwidth (single thread, page cache warm). \
        The generated files are deleted afterwards unless --keep is given.
        """)

    @Option(help: "Work directory for the generated checkpoints (default: a new folder under $TMPDIR or /tmp).")
    var dir: String?

    @Option(help: "Approximate size of the generated checkpoint in GB (about 1 GB at least).")
    var gb: Double = 4

    @Option(help: "Timed repetitions; medians are reported.")
    var repeats: Int = 5

    @Flag(help: "Keep the generated checkpoints.")
    var keep = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        guard gb > 0 else { throw ValidationError("--gb must be positive") }
        guard repeats > 0 else { throw ValidationError("--repeats must be positive") }
    }

    func run() throws {
        let tmp = ProcessInfoLite.environment("TMPDIR") ?? "/tmp"
        let directory = dir ?? "\(tmp)/nemo-convert-bench-read-\(getpid())"
        var stderr = StandardError()
        let r: ReadBenchmark.Result
        do {
            r = try ReadBenchmark.run(ReadBenchmark.Options(directory: directory, gigabytes: gb, keep: keep, repeats: repeats)) {
                print($0, to: &stderr)
            }
        } catch { fail(error) }
        if json {
            print(JSONWriter.string(r.json, pretty: true))
            return
        }
        print("""
        dense checkpoint   \(r.pattern), \(r.routedExperts) routed experts per MoE layer, \(grouped(r.tensorCount)) tensors in \(r.shards) shards, \(humanBytes(r.dataBytes)) (written in \(fmt(r.writeSeconds)) s, \(fmt(Double(r.dataBytes) / r.writeSeconds / 1e9)) GB/s)
        open + validate    \(fmt(r.openMilliseconds)) ms
        full Nano-3 layout \(grouped(r.layoutTensorCount)) tensors in \(r.layoutShards) shards, \(humanBytes(r.layoutBytes)) logical (holes)
        open + validate    \(fmt(r.layoutOpenMilliseconds)) ms
        BF16→F32           \(fmt(r.convertGBps)) GB/s of BF16 input (1 thread, page cache warm, one reused buffer)
        memcpy             \(fmt(r.memcpyGBps)) GB/s
        ratio              \(fmt(r.ratio))
        \(r.kept ? "kept in \(r.directory)" : "generated files deleted")

        conversion kernels, GB/s of input (256K elements, output in cache / 32M elements, output to memory):
        """)
        for k in r.kernels {
            print("  \(pad(k.dtype.rawValue, 8)) \(fmt(k.inCacheGBps)) / \(fmt(k.largeGBps))")
        }
    }
}

private func fmt(_ x: Double) -> String {
    let r = (x * 100).rounded() / 100
    return String(r)
}

enum ProcessInfoLite {
    static func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}
