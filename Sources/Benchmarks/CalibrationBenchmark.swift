import Foundation
import Formats
import Model

/// `nemo-convert bench calibrate`: calibrated conversions timed layer by layer, each in a child
/// `convert --calib --json` process so its peak RSS is its own. Runs on the tiny MoE fixture and
/// on a generated checkpoint with Nemotron-3-Nano-30B-A3B widths (random BF16 weights, a few
/// layers of each kind, fewer routed experts so it fits a laptop's disk and RAM).
public enum CalibrationBenchmark {
    public struct Options: Sendable {
        /// Runs each conversion in a child process.
        public var launcher: ConvertLauncher
        public var fixture: String
        public var calibText: String
        public var directory: String
        public var methods: [String] = ["rtn", "mse", "gptq"]
        public var wideExperts = 16
        public var wideWindows = 8
        public var threads = 2
        public init(launcher: ConvertLauncher, fixture: String, calibText: String, directory: String) {
            self.launcher = launcher; self.fixture = fixture; self.calibText = calibText; self.directory = directory
        }
    }

    public struct Run: Sendable {
        public var model: String, method: String
        public var windows: Int, ctx: Int
        public var seconds: Double
        public var layerSeconds: [Double]
        public var layerKinds: [String]
        public var peakRSSBytes: Int
        public var bitsPerWeight: Double

        /// Mean seconds per layer of each kind.
        public var perKind: [(kind: String, seconds: Double, layers: Int)] {
            var order: [String] = [], sum: [String: (Double, Int)] = [:]
            for (k, s) in zip(layerKinds, layerSeconds) {
                if sum[k] == nil { order.append(k) }
                let v = sum[k] ?? (0, 0)
                sum[k] = (v.0 + s, v.1 + 1)
            }
            return order.map { ($0, sum[$0]!.0 / Double(sum[$0]!.1), sum[$0]!.1) }
        }

        public var json: JSONValue {
            .object([
                "model": .string(model), "method": .string(method), "windows": .int(windows), "ctx": .int(ctx),
                "seconds": .number(seconds), "peak_rss_bytes": .int(peakRSSBytes), "bits_per_weight": .number(bitsPerWeight),
                "layer_seconds": .array(layerSeconds.map { .number($0) }),
                "per_kind": .array(perKind.map { .object(["kind": .string($0.kind), "mean_seconds": .number($0.seconds), "layers": .int($0.layers)]) }),
            ])
        }
    }

    public static let widePattern = "M*EM*E-"

    public static func run(_ o: Options, progress: (String) -> Void = { _ in }) throws -> [Run] {
        try FileManager.default.createDirectory(atPath: o.directory, withIntermediateDirectories: true)
        var runs: [Run] = []
        for m in o.methods {
            progress("tiny-moe fixture, \(m)")
            runs.append(try convert(o, model: o.fixture, name: "tiny-moe", method: m, windows: 128))
        }
        let wide = o.directory + "/wide"
        try FileManager.default.createDirectory(atPath: wide, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: wide) }
        var gen = SyntheticCheckpoint.nano3(pattern: widePattern, experts: o.wideExperts, vocab: 8192, shardBytes: 1_000_000_000)
        gen.config["intermediate_size"] = .int(5 * 1856)   // a dense MLP layer of Nano-2-like width
        progress("writing a \(widePattern) checkpoint with Nemotron-3-Nano widths, \(o.wideExperts) routed experts")
        _ = try gen.write(to: wide, materialize: true)
        try FileManager.default.copyItem(atPath: o.fixture + "/tokenizer.json", toPath: wide + "/tokenizer.json")
        for m in o.methods where m != "mse" {
            progress("wide model, \(m)")
            runs.append(try convert(o, model: wide, name: "nano3-wide \(widePattern)", method: m, windows: o.wideWindows))
        }
        return runs
    }

    static func convert(_ o: Options, model: String, name: String, method: String, windows: Int) throws -> Run {
        let out = o.directory + "/calibrated.nemo"
        defer { unlink(out) }
        let r = try o.launcher.run(["convert", model, "-o", out, "--recipe", "int4", "--calib", o.calibText, "--calib-windows", String(windows),
                                    "--method", method, "--threads", String(o.threads), "--json"])
        guard r.status == 0 else {
            throw FormatError.io(file: model, message: "convert --method \(method) exited with \(r.status): \(r.stderr)")
        }
        let data = r.stdout
        let j = try JSONParser.parse(Array(data))
        guard let c = j["calibration"], let secs = c["seconds"]?.doubleValue, let ls = c["layer_seconds"]?.arrayValue,
              let rss = j["peak_rss_bytes"]?.intValue, let bpw = j["bits_per_weight"]?.doubleValue,
              let w = c["windows"]?.intValue, let ctx = c["ctx"]?.intValue else {
            throw FormatError.io(file: o.launcher.name, message: "convert --json lacks the calibration report")
        }
        let cfg = try ModelConfig(contentsOf: model + "/config.json")
        return Run(model: name, method: method, windows: w, ctx: ctx, seconds: secs, layerSeconds: ls.compactMap(\.doubleValue),
                   layerKinds: cfg.layers.map(\.name), peakRSSBytes: rss, bitsPerWeight: bpw)
    }
}
