import Foundation
import Formats
import Model
import Tokenizer

/// `nemo-convert bench forward`: prefill throughput of the layer-streamed forward pass.
///
/// Two models: the tiny-moe fixture (real BF16 weights converted on load, tokens of a real text)
/// and a synthetic one with Nemotron-3-Nano-30B-A3B dimensions (`SyntheticWeights`, random token
/// ids). Each batch runs embed → every layer → final norm through `HybridModel`, timed per layer;
/// lm_head is left out (at 131,072 × 2688 it would be the largest matrix of all, and prefill
/// needs only the last token's logits).
///
/// Every sgemm goes through `Linear`, whose `FlopCounter` adds up 2·m·n·k of each product actually
/// done — routed experts by the tokens routed to them, attention's per-head score products at
/// their full T × T. Time spent inside the weight provider (`TimedWeights`) is reported apart:
/// that is BF16 conversion or dequantization in real use, a copy here, not the forward pass's own
/// arithmetic. cblas_sgemm's own rate on large shapes is measured in the same run as the yardstick.
public enum ForwardBenchmark {
    public struct Options: Sendable {
        /// The tiny-moe fixture directory; nil skips that model.
        public var fixture: String?
        /// Text whose tokens feed the fixture model (repeated if too short); nil uses random ids.
        public var text: String?
        public var tinyBatch: Batch
        /// Layer pattern of the synthetic model; nil skips it.
        public var widePattern: String?
        public var wideBatch: Batch
        public var threads: [Int]
        /// Timed passes per model and thread count, after one untimed warm-up; the median is kept.
        public var repeats: Int

        public init(fixture: String? = nil, text: String? = nil, tinyBatch: Batch = Batch(windows: 8, length: 256),
                    widePattern: String? = "MEM*EM*E", wideBatch: Batch = Batch(windows: 2, length: 512),
                    threads: [Int] = [1, 2], repeats: Int = 3) {
            self.fixture = fixture; self.text = text; self.tinyBatch = tinyBatch
            self.widePattern = widePattern; self.wideBatch = wideBatch
            self.threads = threads; self.repeats = repeats
        }
    }

    /// One layer kind's share of a pass.
    public struct KindFigures: Sendable {
        public var kind: LayerKind
        public var layers: Int
        public var seconds: Double
        /// Of `seconds`, the time inside the weight provider.
        public var loadSeconds: Double
        public var flops: Double
        /// Process CPU time, and the calling thread's CPU time inside the weight provider.
        public var cpuSeconds: Double
        public var loadCPUSeconds: Double
        public var computeGFLOPS: Double { flops / max(1e-12, seconds - loadSeconds) / 1e9 }
        public var computeCPUGFLOPS: Double { flops / max(1e-12, cpuSeconds - loadCPUSeconds) / 1e9 }
    }

    /// One timed pass (the median of the repeats).
    public struct Run: Sendable {
        public var model: String
        public var pattern: String
        public var threads: Int
        public var batch: Batch
        public var seconds: Double
        public var loadSeconds: Double
        public var flops: Double
        public var kinds: [KindFigures]
        /// Embedding lookup and final norm.
        public var otherSeconds: Double
        public var allSeconds: [Double]
        /// User + system CPU time of the process during the pass. On this shared VM, well under
        /// threads × seconds means other processes held the cores: the wall-clock figures are low.
        public var cpuSeconds: Double
        public var loadCPUSeconds: Double
        public var cpuUtilization: Double { cpuSeconds / (Double(threads) * seconds) }
        /// FLOPs per CPU-second outside the weight provider. At one thread this is what an idle
        /// machine would show as wall-clock GFLOP/s, whatever else shares the cores.
        public var computeCPUGFLOPS: Double { flops / (cpuSeconds - loadCPUSeconds) / 1e9 }

        public var tokensPerSecond: Double { Double(batch.rows) / seconds }
        public var computeSeconds: Double { seconds - loadSeconds }
        public var computeTokensPerSecond: Double { Double(batch.rows) / computeSeconds }
        public var gflops: Double { flops / seconds / 1e9 }
        public var computeGFLOPS: Double { flops / computeSeconds / 1e9 }
    }

    public struct Result: Sendable {
        public var sgemm: [SgemmPeak.Figure]
        public var runs: [Run]

        /// The best sgemm rate measured at `threads`.
        public func peak(threads: Int) -> Double {
            sgemm.filter { $0.threads == threads }.map(\.gflops).max() ?? .nan
        }

        /// The best sgemm rate per CPU-second measured at `threads`.
        public func cpuPeak(threads: Int) -> Double {
            sgemm.filter { $0.threads == threads }.map(\.cpuGFLOPS).max() ?? .nan
        }

        public var json: JSONValue {
            var sg: [JSONValue] = []
            for f in sgemm {
                sg.append(["label": .string(f.shape.label), "m": .int(f.shape.m), "n": .int(f.shape.n), "k": .int(f.shape.k),
                           "trans_b": .bool(f.shape.transB), "threads": .int(f.threads), "gflops": .number(r2(f.gflops)),
                           "cpu_gflops": .number(r2(f.cpuGFLOPS))])
            }
            var rs: [JSONValue] = []
            for r in runs {
                var kinds = JSONObject()
                for k in r.kinds {
                    kinds[k.kind.name] = [
                        "layers": .int(k.layers), "seconds": .number(r4(k.seconds)), "load_seconds": .number(r4(k.loadSeconds)),
                        "gflop": .number(r2(k.flops / 1e9)), "compute_gflops": .number(r2(k.computeGFLOPS)),
                        "cpu_seconds": .number(r4(k.cpuSeconds)), "load_cpu_seconds": .number(r4(k.loadCPUSeconds)),
                        "compute_cpu_gflops": .number(r2(k.computeCPUGFLOPS)),
                    ]
                }
                let peak = peak(threads: r.threads), cpuPeak = cpuPeak(threads: r.threads)
                rs.append([
                    "model": .string(r.model), "pattern": .string(r.pattern), "threads": .int(r.threads),
                    "windows": .int(r.batch.windows), "ctx": .int(r.batch.length), "tokens": .int(r.batch.rows),
                    "seconds": .number(r4(r.seconds)), "load_seconds": .number(r4(r.loadSeconds)),
                    "other_seconds": .number(r4(r.otherSeconds)),
                    "cpu_seconds": .number(r4(r.cpuSeconds)), "cpu_utilization": .number(r4(r.cpuUtilization)),
                    "all_seconds": .array(r.allSeconds.map { .number(r4($0)) }),
                    "tokens_per_second": .number(r2(r.tokensPerSecond)),
                    "compute_tokens_per_second": .number(r2(r.computeTokensPerSecond)),
                    "gflop": .number(r2(r.flops / 1e9)), "gflops": .number(r2(r.gflops)),
                    "compute_gflops": .number(r2(r.computeGFLOPS)),
                    "sgemm_peak_gflops": .number(r2(peak)),
                    "fraction_of_peak": .number(r4(r.gflops / peak)),
                    "compute_fraction_of_peak": .number(r4(r.computeGFLOPS / peak)),
                    "load_cpu_seconds": .number(r4(r.loadCPUSeconds)),
                    "compute_cpu_gflops": .number(r2(r.computeCPUGFLOPS)),
                    "sgemm_peak_cpu_gflops": .number(r2(cpuPeak)),
                    "compute_cpu_fraction_of_peak": .number(r4(r.computeCPUGFLOPS / cpuPeak)),
                    "kinds": .object(kinds),
                ])
            }
            return ["sgemm": .array(sg), "runs": .array(rs)]
        }
    }

    /// Nemotron-3-Nano-30B-A3B dimensions (docs/nemotron-h.md §1.2) with a chosen pattern and a
    /// small vocabulary (no lm_head runs).
    public static func wideConfig(pattern: String) throws -> ModelConfig {
        try SyntheticCheckpoint.nano3(pattern: pattern, experts: 128, vocab: 1024, shardBytes: 1).modelConfig()
    }

    public static func run(_ o: Options, progress: (String) -> Void = { _ in }) throws -> Result {
        var result = Result(sgemm: [], runs: [])
        FlopCounter.enabled = true
        defer { FlopCounter.enabled = false }

        var tiny: (model: HybridModel, timed: TimedWeights, tokens: [Int32])?
        if let f = o.fixture {
            let timed = TimedWeights(try CheckpointWeights(path: f))
            let tokens = try tinyTokens(fixture: f, text: o.text, count: o.tinyBatch.rows, vocab: timed.config.vocabSize)
            tiny = (HybridModel(weights: timed), timed, tokens)
        }
        var wide: (model: HybridModel, timed: TimedWeights, tokens: [Int32])?
        if let p = o.widePattern {
            let cfg = try wideConfig(pattern: p)
            let timed = TimedWeights(SyntheticWeights(config: cfg))
            wide = (HybridModel(weights: timed), timed, randomTokens(o.wideBatch.rows, vocab: cfg.vocabSize))
        }

        for t in o.threads {
            Threads.set(t)
            for s in sgemmShapes(o) {
                progress("sgemm \(s.label) \(s.m)×\(s.n)×\(s.k), \(t) thread(s)")
                result.sgemm.append(SgemmPeak.measure(s, threads: t))
            }
            Threads.set(t)
            if let m = tiny {
                progress("tiny-moe, \(t) thread(s), \(o.tinyBatch.windows) × \(o.tinyBatch.length) tokens")
                result.runs.append(try timedRuns("nemotron-h-tiny-moe", m, batch: o.tinyBatch, threads: t, repeats: o.repeats))
            }
            if let m = wide {
                progress("synthetic Nemotron-3-Nano dims \(m.model.config.pattern), \(t) thread(s), \(o.wideBatch.windows) × \(o.wideBatch.length) tokens")
                result.runs.append(try timedRuns("synthetic-nano3", m, batch: o.wideBatch, threads: t, repeats: o.repeats))
            }
            // Once more after the passes: on a shared machine the rate drifts within a run, and
            // the peak is the best of both.
            var square = SgemmPeak.measure(sgemmShapes(o)[0], threads: t)
            square.shape.label = "square, after the passes"
            result.sgemm.append(square)
        }
        return result
    }

    /// Large shapes for the peak (a square product and the wide model's in_proj over the batch),
    /// plus one routed expert's up projection at its average token count, which is what MoE
    /// layers are made of and sgemm does less well.
    static func sgemmShapes(_ o: Options) -> [SgemmPeak.Shape] {
        var s = [SgemmPeak.Shape(m: 2048, n: 2048, k: 2048, transB: false, label: "square")]
        if o.widePattern != nil {
            let rows = o.wideBatch.rows
            s.append(SgemmPeak.Shape(m: rows, n: 10304, k: 2688, transB: true, label: "mamba in_proj"))
            s.append(SgemmPeak.Shape(m: max(1, rows * 6 / 128), n: 1856, k: 2688, transB: true, label: "routed expert up"))
        }
        return s
    }

    static func timedRuns(_ name: String, _ m: (model: HybridModel, timed: TimedWeights, tokens: [Int32]),
                          batch: Batch, threads: Int, repeats: Int) throws -> Run {
        _ = try pass(name, m, batch: batch, threads: threads)      // warm-up: buffers allocated and touched
        var runs: [Run] = []
        for _ in 0..<max(1, repeats) { runs.append(try pass(name, m, batch: batch, threads: threads)) }
        let sorted = runs.sorted { $0.seconds < $1.seconds }
        var median = sorted[(sorted.count - 1) / 2]
        median.allSeconds = runs.map(\.seconds)
        return median
    }

    /// One prefill of the batch, layer by layer, with per-kind time, load time and FLOPs.
    static func pass(_ name: String, _ m: (model: HybridModel, timed: TimedWeights, tokens: [Int32]),
                     batch: Batch, threads: Int) throws -> Run {
        let model = m.model, cfg = model.config
        let x = FloatBuffer(count: batch.rows * cfg.hiddenSize)
        var kinds: [LayerKind: KindFigures] = [:]
        let start = BenchClock.now(), load0 = m.timed.seconds, cpu0 = BenchClock.cpu(), loadCPU0 = m.timed.cpuSeconds
        FlopCounter.reset()
        try model.embed(m.tokens, batch: batch, into: x)
        var layerSeconds = 0.0
        for l in cfg.layers.indices {
            let t0 = BenchClock.now(), l0 = m.timed.seconds, f0 = FlopCounter.flops
            let c0 = BenchClock.cpu(), lc0 = m.timed.cpuSeconds
            try model.runLayer(l, x, batch: batch)
            let dt = BenchClock.now() - t0
            layerSeconds += dt
            var k = kinds[cfg.layers[l]] ?? KindFigures(kind: cfg.layers[l], layers: 0, seconds: 0, loadSeconds: 0, flops: 0,
                                                        cpuSeconds: 0, loadCPUSeconds: 0)
            k.cpuSeconds += BenchClock.cpu() - c0
            k.loadCPUSeconds += m.timed.cpuSeconds - lc0
            k.layers += 1
            k.seconds += dt
            k.loadSeconds += m.timed.seconds - l0
            k.flops += FlopCounter.flops - f0
            kinds[cfg.layers[l]] = k
        }
        try model.finalNorm(x, batch: batch)
        let seconds = BenchClock.now() - start, cpu = BenchClock.cpu() - cpu0
        let order: [LayerKind] = [.mamba, .attention, .mlp, .moe]
        return Run(model: name, pattern: cfg.pattern, threads: threads, batch: batch, seconds: seconds,
                   loadSeconds: m.timed.seconds - load0, flops: FlopCounter.flops,
                   kinds: order.compactMap { kinds[$0] }, otherSeconds: seconds - layerSeconds, allSeconds: [seconds], cpuSeconds: cpu,
                   loadCPUSeconds: m.timed.cpuSeconds - loadCPU0)
    }

    static func tinyTokens(fixture: String, text: String?, count: Int, vocab: Int) throws -> [Int32] {
        guard let t = text else { return randomTokens(count, vocab: vocab) }
        let tok = try Tokenizer(contentsOf: fixture + "/tokenizer.json")
        let bytes = try MappedFile.contents(of: t)
        let ids = try tok.encode(String(decoding: bytes, as: UTF8.self), addSpecialTokens: false)
        guard !ids.isEmpty else { return randomTokens(count, vocab: vocab) }
        return (0..<count).map { ids[$0 % ids.count] }
    }

    static func randomTokens(_ n: Int, vocab: Int) -> [Int32] {
        var g = SyntheticWeights.Generator(seed: 0x70CE)
        return (0..<n).map { _ in Int32(truncatingIfNeeded: g.next() % UInt64(vocab)) }
    }
}

private func r2(_ x: Double) -> Double { x.isFinite ? (x * 100).rounded() / 100 : 0 }
private func r4(_ x: Double) -> Double { x.isFinite ? (x * 10000).rounded() / 10000 : 0 }
