import ArgumentParser
import Benchmarks
import Calibrate
import Model
import Formats
import Verify

struct BenchForward: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Prefill throughput of the reference forward pass, against cblas_sgemm's peak.",
        discussion: """
        Runs batches through the layer-streamed FP32 forward pass of (a) the tiny-moe fixture and (b) a \
        synthetic model with Nemotron-3-Nano-30B-A3B dimensions and random weights (pattern --pattern), \
        at each --threads count, after one warm-up pass; reports the median of --repeats passes: \
        tokens/s, time per layer kind, time inside the weight provider, and GFLOP/s of every matrix \
        product against cblas_sgemm measured in the same run.
        """)

    @Option(help: "The tiny-moe fixture directory (skipped if missing and not given explicitly).")
    var fixture: String?

    @Option(help: "Text whose tokens feed the fixture model.")
    var text = "fixtures/text/kjv-heldout.txt"

    @Option(help: "Comma-separated thread counts.")
    var threads = "1,2"

    @Option(help: "Windows per batch for the wide model.")
    var windows = 2

    @Option(help: "Tokens per window for the wide model.")
    var ctx = 512

    @Option(help: "Windows per batch for the fixture model.")
    var tinyWindows = 8

    @Option(help: "Tokens per window for the fixture model.")
    var tinyCtx = 256

    @Option(help: "Layer pattern of the synthetic wide model (M Mamba, * attention, - MLP, E MoE).")
    var pattern = "MEM*EM*E"

    @Option(help: "Timed passes per model and thread count (median reported), after one warm-up.")
    var repeats = 3

    @Flag(help: "Skip the synthetic wide model.")
    var noWide = false

    @Flag(help: "Skip the fixture model.")
    var noTiny = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func threadCounts() throws -> [Int] {
        let parts = threads.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw ValidationError("--threads must be a comma-separated list of positive integers, got '\(threads)'")
        }
        return parts.map { $0! }
    }

    func validate() throws {
        _ = try threadCounts()
        guard windows >= 1, ctx >= 1, tinyWindows >= 1, tinyCtx >= 1 else {
            throw ValidationError("--windows, --ctx, --tiny-windows and --tiny-ctx must be positive")
        }
        guard repeats >= 1 else { throw ValidationError("--repeats must be positive") }
        guard !pattern.isEmpty, pattern.allSatisfy({ "M*-E".contains($0) }) else {
            throw ValidationError("--pattern must be made of M, *, - and E")
        }
    }

    func run() throws {
        var fixturePath: String? = nil
        if !noTiny {
            let f = fixture ?? "fixtures/nemotron-h-tiny-moe"
            if fixture != nil || fileExists(f + "/config.json") { fixturePath = f }
        }
        let options = ForwardBenchmark.Options(
            fixture: fixturePath, text: fileExists(text) ? text : nil,
            tinyBatch: Batch(windows: tinyWindows, length: tinyCtx),
            widePattern: noWide ? nil : pattern, wideBatch: Batch(windows: windows, length: ctx),
            threads: try threadCounts(), repeats: repeats)
        var stderr = StandardError()
        let r: ForwardBenchmark.Result
        do {
            r = try ForwardBenchmark.run(options) { if stderrIsTTY && !json { print($0, to: &stderr) } }
        } catch { fail(error) }
        let rss = ResourceUsage.peakRSSBytes()
        if json {
            var o = r.json.objectValue!
            o["peak_rss_bytes"] = .int(rss)
            print(JSONWriter.string(.object(o), pretty: true))
            return
        }
        print("cblas_sgemm, GFLOP/s:")
        for f in r.sgemm {
            print("  \(pad("\(f.shape.label) \(f.shape.m)×\(f.shape.n)×\(f.shape.k)\(f.shape.transB ? " (Bᵀ)" : "")", 44)) \(f.threads) thread(s)  \(fmt1(f.gflops))  (\(fmt1(f.cpuGFLOPS)) per CPU-second)")
        }
        for run in r.runs {
            let peak = r.peak(threads: run.threads), cpuPeak = r.cpuPeak(threads: run.threads)
            print("""

            \(run.model) \(run.pattern), \(run.threads) thread(s), \(run.batch.windows) × \(run.batch.length) = \(run.batch.rows) tokens
              prefill      \(fmt1(run.tokensPerSecond)) tokens/s (\(fmt3(run.seconds)) s; passes \(run.allSeconds.map(fmt3).joined(separator: ", ")); CPU busy \(pct(run.cpuUtilization)) of \(run.threads) thread(s))
              weight loads \(fmt3(run.loadSeconds)) s; without them \(fmt1(run.computeTokensPerSecond)) tokens/s
              matmul       \(fmt1(run.flops / 1e9)) GFLOP: \(fmt1(run.gflops)) GFLOP/s overall, \(fmt1(run.computeGFLOPS)) without loads = \(pct(run.computeGFLOPS / peak)) of sgemm peak \(fmt1(peak))
              per CPU-s    \(fmt1(run.computeCPUGFLOPS)) GFLOP/s without loads = \(pct(run.computeCPUGFLOPS / cpuPeak)) of sgemm's \(fmt1(cpuPeak))
            """)
            for k in run.kinds {
                print("  \(pad(k.kind.name, 10)) \(k.layers) layer(s)  \(fmt3(k.seconds)) s (loads \(fmt3(k.loadSeconds)) s)  \(fmt1(k.flops / 1e9)) GFLOP  \(fmt1(k.computeGFLOPS)) GFLOP/s  (\(fmt1(k.computeCPUGFLOPS)) per CPU-s)")
            }
            print("  \(pad("other", 10)) embed + final norm \(fmt3(run.otherSeconds)) s")
        }
        print("\npeak RSS \(humanBytes(rss))")
    }
}

private func fmt1(_ x: Double) -> String { String(format: "%.1f", x) }
private func fmt3(_ x: Double) -> String { String(format: "%.3f", x) }
private func pct(_ x: Double) -> String { String(format: "%.0f%%", x * 100) }

import Foundation
