#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import ArgumentParser
import Benchmarks
import Calibrate
import Model
import Formats

struct BenchCalibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Calibration seconds per layer and peak RSS, per method, on the tiny MoE fixture and a wide synthetic model.",
        discussion: """
        Each run is a child `convert --recipe int4 --calib FILE --method M --json` process. The wide model has \
        Nemotron-3-Nano-30B-A3B widths and the pattern \(CalibrationBenchmark.widePattern) (Mamba, attention, \
        MoE, dense MLP) with random BF16 weights and --experts routed experts; it is generated in --dir and \
        deleted afterwards.
        """)

    @Option(help: "The tiny fixture model.")
    var fixture = "fixtures/nemotron-h-tiny-moe"

    @Option(help: "Calibration text.")
    var calib = "fixtures/text/kjv-calib.txt"

    @Option(help: "Work directory (default: a new folder under $TMPDIR or /tmp).")
    var dir: String?

    @Option(help: "Methods, comma-separated.")
    var methods = "rtn,mse,gptq"

    @Option(help: "Routed experts per MoE layer of the wide model.")
    var experts = 16

    @Option(help: "Calibration windows of 256 tokens for the wide model.")
    var windows = 8

    @Option(help: "Threads per conversion.")
    var threads = 2

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        let tmp = ProcessInfoLite.environment("TMPDIR") ?? "/tmp"
        let launcher: ConvertLauncher
        do { launcher = try .ownExecutable() } catch { fail(error) }
        var o = CalibrationBenchmark.Options(launcher: launcher, fixture: fixture, calibText: calib, directory: dir ?? "\(tmp)/nemo-convert-bench-calibrate-\(getpid())")
        o.methods = methods.split(separator: ",").map(String.init)
        o.wideExperts = experts
        o.wideWindows = windows
        o.threads = threads
        var stderr = StandardError()
        let runs: [CalibrationBenchmark.Run]
        do { runs = try CalibrationBenchmark.run(o) { if !json { print($0, to: &stderr) } } } catch { fail(error) }
        if json {
            print(JSONWriter.string(.object(["runs": .array(runs.map(\.json))]), pretty: true))
            return
        }
        for r in runs {
            let kinds = r.perKind.map { String(format: "%@ %.2f s", $0.kind, $0.seconds) }.joined(separator: ", ")
            print(String(format: "%@  %@  %d×%d tokens  %.1f s  peak RSS %.0f MB  per layer: ", r.model, r.method, r.windows, r.ctx,
                         r.seconds, Double(r.peakRSSBytes) / 1e6) + kinds)
        }
    }
}
