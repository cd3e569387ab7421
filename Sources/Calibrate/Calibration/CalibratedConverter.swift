import Foundation
import Formats
import Model
import Quantize

/// Calibrated conversion: the calibration text goes through the layer-streaming forward pass, and
/// each layer is quantized as soon as its inputs' statistics are known, then (sequential mode)
/// run again quantized so the next layer calibrates on the inputs it will really see.
///
/// Memory holds the calibration activations ([windows × ctx, hidden], twice in sequential mode),
/// one layer's FP32 weights and that layer's statistics; the packed output streams to disk as for
/// an uncalibrated conversion.
public final class CalibratedConverter {
    public let converter: Converter
    public let options: CalibrationOptions
    /// The calibration text or statistics files, for messages that must say where bad data came from.
    public var calibrationSource: String?
    public var map: TensorMap { converter.map }
    public var config: ModelConfig { converter.map.config }

    public init(map: TensorMap, recipe: Recipe, options: CalibrationOptions) {
        converter = Converter(map: map, recipe: recipe)
        self.options = options
    }

    /// Where statistics come from: calibration windows (`tokens` holds `windows` × `ctx` ids), or a
    /// statistics file loaded earlier (no forward pass; not sequential).
    public enum Source {
        case text(tokens: [Int32], windows: Int, ctx: Int)
        case statistics(CalibrationStats, path: String)
    }

    public struct Progress: Sendable {
        public var step: Int, steps: Int
        public var what: String
    }

    public func convert(to output: String, source: Source, metadata: JSONObject, blobs: [(String, [UInt8])],
                        saveStats: String? = nil, progress: ((Progress) -> Void)? = nil) throws -> (ConvertReport, CalibrationReport) {
        try convert(into: try PackedWriter(path: output), source: source, metadata: metadata, blobs: blobs,
                    saveStats: saveStats, progress: progress)
    }

    /// Converts into `writer`, finished on success and discarded on any error; sequential
    /// calibration reads the layers it wrote back from it (`TensorSink.readBack`).
    public func convert(into writer: TensorSink, source: Source, metadata: JSONObject, blobs: [(String, [UInt8])],
                        saveStats: String? = nil, progress: ((Progress) -> Void)? = nil) throws -> (ConvertReport, CalibrationReport) {
        let start = Date()
        let plans: [(BoundTensor, TensorPlan)]
        do {
            plans = try converter.plans()
            try SinkCheck.require(plans, fit: writer)
            try writer.prepare(plans.map { $0.0.sinkTensor($0.1) })
        } catch { writer.discard(); throw error }
        if case let .statistics(loaded, path) = source {
            do { try StatsFile.check(loaded, against: map, file: path) } catch { writer.discard(); throw error }
        }
        let L = config.layers.count
        var byLayer = [[(BoundTensor, TensorPlan)]](repeating: [], count: L)
        var pre: [(BoundTensor, TensorPlan)] = [], post: [(BoundTensor, TensorPlan)] = []
        for p in plans {
            if let l = p.0.layer { byLayer[l].append(p) } else if p.0.role == .lmHead || p.0.role == .finalNorm { post.append(p) } else { pre.append(p) }
        }
        var entries: [ConvertReport.Entry] = []
        var layerSeconds: [Double] = []
        var extraDamping: [String: Double] = [:]
        let statsWriter: StatsFileWriter?
        do { statsWriter = try saveStats.map { try StatsFileWriter(path: $0, modelType: config.modelType, contextLength: ctx(of: source)) } }
        catch { writer.discard(); throw error }
        let all = CalibrationStats()
        var tokens = 0

        let base = CheckpointWeights(map: map)
        func write(_ group: [(BoundTensor, TensorPlan)], stats: CalibrationStats, written: WrittenWeights?) throws {
            let folding = options.method == .awq || (options.method == .gptq && options.foldScales)
            let folded = folding ? try activationScales(group, stats: stats, base: base) : [:]
            for (t, plan) in group {
                var (encoder, attrs) = try encoder(for: t, plan: plan, stats: stats, extraDamping: &extraDamping)
                if let s = folded[t.name] {
                    encoder = ColumnScaledEncoder(scale: s.scale, inner: encoder)
                    attrs["awq_alpha"] = .number(Double(s.alpha))
                }
                // GPTQ calls sgemm inside the converter's row threads: keep OpenBLAS single-threaded there.
                Linear.setThreads(1)
                defer { Linear.setThreads(Threads.count) }
                entries.append(try converter.writeTensor(t, plan, to: writer, encoder: encoder, attributes: attrs))
                try written?.record(t, plan: plan, rewritten: encoder != nil)
            }
        }

        do {
            progress?(Progress(step: 0, steps: L + 2, what: "embedding"))
            try write(pre, stats: all, written: nil)
            switch source {
            case .statistics(let loaded, _):
                for l in 0..<L {
                    let t0 = Date()
                    progress?(Progress(step: l + 1, steps: L + 2, what: "layer \(l)"))
                    let s = loaded.take(layer: l)
                    try write(byLayer[l], stats: s, written: nil)
                    all.merge(routingOnly: s)
                    layerSeconds.append(Date().timeIntervalSince(t0))
                }
                try write(post, stats: loaded, written: nil)
                tokens = loaded.tokens
            case let .text(ids, windows, ctx):
                tokens = windows * ctx
                let written = WrittenWeights(base: base, writer: writer)
                let model = HybridModel(weights: options.sequential ? written : base)
                let collector = StatsCollector(experts: config.moe?.experts ?? 0, grams: options.method.needsGram,
                                               feedEveryExpert: options.feedEveryExpert)
                // Activations of every calibration window, in batches.
                var batches: [(Batch, FloatBuffer)] = []
                var w0 = 0
                while w0 < windows {
                    let n = min(options.batchWindows, windows - w0)
                    let b = Batch(windows: n, length: ctx)
                    let x = FloatBuffer(count: b.rows * config.hiddenSize)
                    try model.embed(Array(ids[(w0 * ctx)..<((w0 + n) * ctx)]), batch: b, into: x)
                    batches.append((b, x))
                    w0 += n
                }
                let saved = options.sequential ? batches.map { FloatBuffer(count: $0.0.rows * config.hiddenSize) } : []
                for l in 0..<L {
                    let t0 = Date()
                    progress?(Progress(step: l + 1, steps: L + 2, what: "layer \(l) (\(config.layers[l].name))"))
                    for (i, (b, x)) in batches.enumerated() {
                        if options.sequential { saved[i].pointer.update(from: x.pointer, count: b.rows * config.hiddenSize) }
                        collector.beginBatch()
                        try model.runLayer(l, x, batch: b, observer: collector)
                    }
                    let s = collector.stats.take(layer: l)
                    try statsWriter?.write(s)
                    try write(byLayer[l], stats: s, written: options.sequential ? written : nil)
                    all.merge(routingOnly: s)
                    if options.sequential {
                        // Run the layer again, quantized, from the same inputs.
                        for (i, (b, x)) in batches.enumerated() {
                            x.pointer.update(from: saved[i].pointer, count: b.rows * config.hiddenSize)
                            try model.runLayer(l, x, batch: b)
                        }
                    }
                    layerSeconds.append(Date().timeIntervalSince(t0))
                }
                // lm_head reads the final-normed hidden states.
                progress?(Progress(step: L + 1, steps: L + 2, what: "lm_head"))
                let head = LinearStats(width: config.hiddenSize, gram: options.method.needsGram)
                for (b, x) in batches {
                    try model.finalNorm(x, batch: b)
                    head.add(x.pointer, rows: b.rows)
                }
                let hs = CalibrationStats()
                hs.set(StatsKey(.lmHead, layer: nil), head)
                try statsWriter?.write(hs)
                try write(post, stats: hs, written: nil)
            }
            try statsWriter?.finish(tokens: tokens)
            let report = CalibrationReport(
                method: options.method, sequential: options.sequential && isText(source),
                windows: windowsOf(source), ctx: ctx(of: source), tokens: tokens, statsFrom: statsPath(source),
                seconds: Date().timeIntervalSince(start), layerSeconds: layerSeconds,
                rareExperts: rareExperts(all, tokens: tokens), extraDamping: extraDamping)
            var meta = metadata
            meta["calibration"] = report.json
            try converter.finish(writer, metadata: meta, blobs: blobs)
            let totalIn = plans.reduce(0) { $0 + $1.0.data.byteCount }
            return (ConvertReport(output: writer.path, inputBytes: totalIn, outputBytes: writer.fileSize,
                                  seconds: Date().timeIntervalSince(start), entries: entries,
                                  compressedBytesSaved: writer.compressedBytesSaved), report)
        } catch {
            writer.discard()
            statsWriter?.abandon()
            throw error
        }
    }

    /// The encoder and extra tensor attributes for one tensor, from its layer's statistics.
    private func encoder(for t: BoundTensor, plan: TensorPlan, stats: CalibrationStats,
                         extraDamping: inout [String: Double]) throws -> (SegmentEncoder?, JSONObject) {
        var attrs = JSONObject()
        // The K and V projections' output range, whatever their scheme: an FP8 KV cache's static
        // scales come from it (ModelOpt's k_scale / v_scale), and attention itself may stay BF16.
        if t.role == .attnK || t.role == .attnV, let m = stats.outputAbsMax[StatsKey(t.role, layer: t.layer)] {
            attrs["output_absmax"] = .number(Double(m))
        }
        guard plan.isQuantized, t.role.isLinear, let s = stats.combined(t.role, layer: t.layer, expert: t.expert),
              s.rows > 0 else { return (nil, attrs) }
        // The largest input magnitude seen: a static activation scale maps it to the format's
        // largest value (FP8: amax / 448, ModelOpt's NVFP4: amax / (6 · 448)). For routed experts
        // it covers the every-expert rows too, so it never clips a token serving may route there.
        let amax = s.absMax.max() ?? 0
        attrs["input_absmax"] = .number(Double(amax))
        if plan.segments.contains(where: { $0.scheme == .fp8Tensor || $0.scheme == .fp8Channel }) {
            attrs["input_scale"] = .number(Double(FP8E4M3.scale(absMax: amax)))
        }
        attrs["calibration_rows"] = .int(s.rows)
        switch options.method {
        case .rtn:
            return (nil, attrs)
        case .mse:
            return (ClipSearchEncoder(importance: s.meanSquares), attrs)
        case .awq:
            // Inputs of a scaled weight are x_j / s_j; the driver wraps this in the column scaling.
            let scale = awqInputScale[t.name]
            let imp = scale.map { sc in zip(s.meanSquares, sc).map { $0 / ($1 * $1) } } ?? s.meanSquares
            return (ClipSearchEncoder(importance: imp), attrs)
        case .gptq:
            guard var g = s.gramMatrix else { return (ClipSearchEncoder(importance: s.meanSquares), attrs) }
            let n = s.width
            if let sc = awqInputScale[t.name] {
                // The scaled weight reads x_j / s_j: H' = diag(1/s) H diag(1/s).
                for i in 0..<n { for j in 0..<n { g[i * n + j] /= sc[i] * sc[j] } }
            }
            let diag = (0..<n).map { g[$0 * n + $0] }
            let f: HessianFactor
            do {
                f = try g.withUnsafeBufferPointer { try HessianFactor(gram: $0.baseAddress!, cols: n, damping: options.damping, actOrder: options.actOrder) }
            } catch let e as HessianFactor.Failure {
                // The statistics cannot calibrate this weight: bad input, named by file and tensor.
                throw FormatError.invalidTensor(file: calibrationSource ?? "calibration statistics", tensor: t.name,
                                                message: "\(e.description) (its \(s.rows) calibration rows do not span the weight's \(n) input columns; more or other calibration text, or a larger --damp, may help)")
            }
            if f.damping > options.damping { extraDamping[t.name] = f.damping }
            return (GPTQEncoder(factor: f, blockSize: options.blockSize, importance: diag), attrs)
        }
    }

    /// Column scales chosen for the current layer's consumers (for their clipping-search weights).
    private var awqInputScale: [String: [Float]] = [:]

    /// Which weights read the output of which norm, per layer kind: the groups where scaling the
    /// norm weight by 1/s and the readers' columns by s is exact. Attention o_proj (GQA heads
    /// share v rows) and the down projections are not in this list.
    static func foldingGroups(_ kind: LayerKind) -> [(producer: TensorRole, consumers: [TensorRole])] {
        switch kind {
        case .mamba: return [(.layerNorm, [.mambaInProj]), (.mambaNorm, [.mambaOutProj])]
        case .attention: return [(.layerNorm, [.attnQ, .attnK, .attnV])]
        case .mlp: return [(.layerNorm, [.mlpUp])]
        case .moe: return [(.layerNorm, [.routerWeight, .sharedUp, .latentIn, .expertUp])]
        }
    }

    /// AWQ for one layer: tensor name → (column scale, α). The producer gets 1/s, its readers s.
    private func activationScales(_ group: [(BoundTensor, TensorPlan)], stats: CalibrationStats,
                                  base: CheckpointWeights) throws -> [String: (scale: [Float], alpha: Float)] {
        awqInputScale = [:]
        guard let l = group.first?.0.layer else { return [:] }
        var out: [String: (scale: [Float], alpha: Float)] = [:]
        for fg in Self.foldingGroups(config.layers[l]) {
            guard let producer = group.first(where: { $0.0.role == fg.producer }) else { continue }
            var readers = group.filter { fg.consumers.contains($0.0.role) }
            // Experts read the latent projection's output, not the norm's, when there is one.
            if config.moe?.latentSize != nil { readers.removeAll { $0.0.role == .expertUp } }
            let cols = readers.first?.1.cols ?? 0
            guard cols > 0, readers.allSatisfy({ $0.1.cols == cols }), producer.0.data.elementCount == cols,
                  readers.contains(where: { $0.1.isQuantized }) else { continue }
            // Every reader sees the same rows; take the input statistics from any that has them.
            guard let input = readers.lazy.compactMap({ stats.combined($0.0.role, layer: l, expert: $0.0.expert) }).first(where: { $0.rows > 0 }),
                  input.width == cols else { continue }
            var buffers: [FloatBuffer] = []
            var consumers: [ActivationAwareScaling.Consumer] = []
            for (t, plan) in readers where plan.isQuantized {
                let b = FloatBuffer(count: plan.rows * cols)
                try base.load(t.role, layer: t.layer, expert: t.expert, into: b.pointer)
                buffers.append(b)
                for seg in plan.segments where seg.scheme.payloadBits < 16 {
                    consumers.append(.init(weights: b.pointer + seg.rows.lowerBound * cols, rows: seg.rows.count, scheme: seg.scheme))
                }
            }
            let (s, alpha) = withExtendedLifetime(buffers) {
                ActivationAwareScaling.search(consumers: consumers, cols: cols, meanSquares: input.meanSquares)
            }
            if alpha == 0 { continue }
            out[producer.0.name] = (s.map { 1 / $0 }, alpha)
            for (t, _) in readers {
                out[t.name] = (s, alpha)
                awqInputScale[t.name] = s
            }
        }
        return out
    }

    private func rareExperts(_ s: CalibrationStats, tokens: Int) -> [CalibrationReport.RareExpert] {
        guard let moe = config.moe, tokens > 0 else { return [] }
        let uniform = Double(tokens) * Double(moe.topK) / Double(moe.experts)
        var out: [CalibrationReport.RareExpert] = []
        for (l, counts) in s.routingCounts.sorted(by: { $0.key < $1.key }) {
            for (e, c) in counts.enumerated() where Double(c) < options.rareExpertShare * uniform {
                out.append(.init(layer: l, expert: e, tokens: c, share: Double(c) / uniform))
            }
        }
        return out
    }

    private func ctx(of s: Source) -> Int { if case let .text(_, _, c) = s { return c }; return 0 }
    private func windowsOf(_ s: Source) -> Int { if case let .text(_, w, _) = s { return w }; return 0 }
    private func isText(_ s: Source) -> Bool { if case .text = s { return true }; return false }
    private func statsPath(_ s: Source) -> String? { if case let .statistics(_, p) = s { return p }; return nil }
}

extension CalibrationStats {
    /// Keeps only the routing counts of `o` (for the report, after a layer's statistics are used).
    func merge(routingOnly o: CalibrationStats) {
        for (l, c) in o.routingCounts { setRouting(layer: l, counts: c) }
    }
}
