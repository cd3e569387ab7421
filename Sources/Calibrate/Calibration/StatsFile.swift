import Formats
import Model

/// The statistics file (`--save-stats`, `--stats`): safetensors, one group of tensors per linear
/// weight, named after the weight (docs/CALIBRATION.md):
///
///     layers.3.mixer.in_proj.weight.sum_sq    F64 [width]   Σ x_j² over calibration rows
///     layers.3.mixer.in_proj.weight.abs_max   F32 [width]   max |x_j|
///     layers.3.mixer.in_proj.weight.rows      I64 [1]       rows seen
///     layers.3.mixer.in_proj.weight.gram      F32 [width, width]  XᵀX, upper triangle (GPTQ only)
///     layers.5.mixer.k_proj.weight.out_abs_max F32 [1]      max |x·Wᵀ| (K and V projections: FP8 KV-cache scales)
///     layers.5.mixer.routing_counts           I64 [experts] tokens the real router sent each expert
///
/// Every-expert statistics carry `.fed` after the weight name. Sums, not means, so two files
/// merge by addition. Written layer by layer as calibration goes (append mode), so it never
/// holds more than one layer's Gram matrices.
public final class StatsFileWriter {
    private let writer: SafetensorsWriter

    public init(path: String, modelType: String, contextLength: Int) throws(FormatError) {
        writer = try SafetensorsWriter(path: path, metadata: [
            "format": "nemo-convert-stats", "version": "1", "model_type": modelType, "ctx": String(contextLength),
        ])
    }

    public func write(_ stats: CalibrationStats) throws(FormatError) {
        for (k, s) in stats.linears.sorted(by: { $0.key.name < $1.key.name }) {
            let n = k.name
            try writer.append(n + ".sum_sq", dtype: .f64, shape: [s.width], bytes: rawBytes(s.sumSquares))
            try writer.append(n + ".abs_max", dtype: .f32, shape: [s.width], bytes: rawBytes(s.absMax))
            try writer.append(n + ".rows", dtype: .i64, shape: [1], bytes: rawBytes([Int64(s.rows)]))
            if let g = s.gram {
                try writer.append(n + ".gram", dtype: .f32, shape: [s.width, s.width], bytes: rawBytes(g))
            }
        }
        for (k, m) in stats.outputAbsMax.sorted(by: { $0.key.name < $1.key.name }) {
            try writer.append(k.name + ".out_abs_max", dtype: .f32, shape: [1], bytes: rawBytes([m]))
        }
        for (l, c) in stats.routingCounts.sorted(by: { $0.key < $1.key }) {
            try writer.append("layers.\(l).mixer.routing_counts", dtype: .i64, shape: [c.count], bytes: rawBytes(c.map(Int64.init)))
        }
    }

    public func finish(tokens: Int) throws(FormatError) {
        try writer.append("tokens", dtype: .i64, shape: [1], bytes: rawBytes([Int64(tokens)]))
        try writer.finish()
    }

    public func abandon() { writer.abandon() }
}

private func rawBytes<T>(_ a: [T]) -> [UInt8] { a.withUnsafeBytes { Array($0) } }

/// Reads statistics files back, validating every entry against the model they are used for.
public enum StatsFile {
    public static func load(_ path: String, config: ModelConfig) throws(FormatError) -> CalibrationStats {
        if PackedFile.isPacked(path: path) {
            throw FormatError.unsupported(file: path, tensor: nil, message: "this is a packed model written by convert, not a statistics file (convert --save-stats FILE writes those)")
        }
        return try load(SafetensorsFile(path: path), config: config)
    }

    /// Reads a statistics file already opened (`f`'s path names it in errors).
    public static func load(_ f: SafetensorsFile, config: ModelConfig) throws(FormatError) -> CalibrationStats {
        let path = f.path
        guard f.metadata["format"] == "nemo-convert-stats" else {
            throw FormatError.invalidHeader(file: path, message: "not a nemo-convert statistics file (metadata format is '\(f.metadata["format"] ?? "missing")')")
        }
        if let mt = f.metadata["model_type"], mt != config.modelType {
            throw FormatError.modelMismatch(file: path, message: "statistics are for model type '\(mt)', the model is '\(config.modelType)'")
        }
        let keys = Dictionary(uniqueKeysWithValues: expectedKeys(config).map { ($0.name, $0) })
        let stats = CalibrationStats()
        for t in f.tensors {
            let name = t.name
            if name == "tokens" {
                let n = try int64s(f, name, count: 1)[0]
                guard n >= 0 else { throw FormatError.invalidTensor(file: path, tensor: name, message: "negative token count \(n)") }
                stats.tokens = Int(n)
                continue
            }
            if name.hasSuffix(".routing_counts") {
                guard let l = layerIndex(name), l < config.layers.count, let moe = config.moe, config.layers[l] == .moe else {
                    throw FormatError.invalidTensor(file: path, tensor: name, message: "no MoE layer of this model matches")
                }
                let c = try int64s(f, name, count: moe.experts)
                if let bad = c.firstIndex(where: { $0 < 0 }) {
                    throw FormatError.invalidTensor(file: path, tensor: name, message: "expert \(bad) has a negative count \(c[bad])")
                }
                stats.setRouting(layer: l, counts: c.map { Int($0) })
                continue
            }
            if name.hasSuffix(".out_abs_max") {
                let base = String(name.dropLast(".out_abs_max".count))
                guard let key = keys[base], key.role == .attnK || key.role == .attnV else {
                    throw FormatError.invalidTensor(file: path, tensor: name, message: "no K or V projection of this model is called '\(base)'")
                }
                let m = (try floats(f, name, dtype: .f32, count: 1) as [Float])[0]
                guard m.isFinite, m >= 0 else { throw FormatError.invalidTensor(file: path, tensor: name, message: "output maximum \(m) is negative or not finite") }
                stats.addOutputAbsMax(key, m)
                continue
            }
            guard name.hasSuffix(".sum_sq") else { continue }
            let base = String(name.dropLast(".sum_sq".count))
            guard let key = keys[base] else {
                throw FormatError.invalidTensor(file: path, tensor: name, message: "no linear weight of this model is called '\(base)'")
            }
            let sum = try floats(f, name, dtype: .f64, count: nil) as [Double]
            let w = sum.count
            let am = try floats(f, base + ".abs_max", dtype: .f32, count: w) as [Float]
            let rows = Int(try int64s(f, base + ".rows", count: 1)[0])
            var gram: [Float]?
            if f.info(base + ".gram") != nil { gram = try floats(f, base + ".gram", dtype: .f32, count: w * w) as [Float] }
            guard rows >= 0, sum.allSatisfy({ $0.isFinite && $0 >= 0 }), am.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw FormatError.invalidTensor(file: path, tensor: name, message: "negative or non-finite statistics")
            }
            if let g = gram, !g.allSatisfy({ $0.isFinite }) || (0..<w).contains(where: { g[$0 * w + $0] < 0 }) {
                throw FormatError.invalidTensor(file: path, tensor: base + ".gram", message: "non-finite values or a negative diagonal (a Gram matrix has neither)")
            }
            stats.set(key, LinearStats(width: w, rows: rows, sumSquares: sum, absMax: am, gram: gram))
        }
        return stats
    }

    /// Checks every statistic against the weight it calibrates — its width must be the weight's
    /// input width — before any work, so a file from a model of the same type but other sizes is
    /// refused by name instead of crashing GPTQ or reading past the clipping search's importance.
    public static func check(_ stats: CalibrationStats, against map: TensorMap, file: String) throws(FormatError) {
        var cols: [StatsKey: Int] = [:]
        for t in map.tensors where t.role.isLinear {
            guard let c = t.data.shape.last else { continue }
            cols[StatsKey(t.role, layer: t.layer, expert: t.expert)] = c
            if t.role == .expertUp { cols[StatsKey(.expertUp, layer: t.layer, expert: nil, fed: true)] = c }
            if t.role == .expertDown { cols[StatsKey(.expertDown, layer: t.layer, expert: t.expert, fed: true)] = c }
        }
        for (k, s) in stats.linears.sorted(by: { $0.key.name < $1.key.name }) {
            guard let want = cols[k] else {
                throw FormatError.invalidTensor(file: file, tensor: k.name + ".sum_sq", message: "no linear weight of this model is called '\(k.name)'")
            }
            guard s.width == want else {
                throw FormatError.invalidTensor(file: file, tensor: k.name + ".sum_sq", message: "width \(s.width), but the weight '\(k.name)' has \(want) input columns (statistics of another model?)")
            }
        }
        if let moe = map.config.moe {
            for (l, c) in stats.routingCounts where c.count != moe.experts {
                throw FormatError.invalidTensor(file: file, tensor: "layers.\(l).mixer.routing_counts", message: "\(c.count) experts, the model has \(moe.experts)")
            }
        }
    }

    /// Every key calibration can produce for this model.
    static func expectedKeys(_ c: ModelConfig) -> [StatsKey] {
        var keys: [StatsKey] = [StatsKey(.lmHead, layer: nil)]
        for (l, kind) in c.layers.enumerated() {
            switch kind {
            case .mamba: keys += [StatsKey(.mambaInProj, layer: l), StatsKey(.mambaOutProj, layer: l)]
            case .attention: keys += [.attnQ, .attnK, .attnV, .attnO].map { StatsKey($0, layer: l) }
            case .mlp: keys += [StatsKey(.mlpUp, layer: l), StatsKey(.mlpDown, layer: l)]
            case .moe:
                let e = c.moe!
                keys += [StatsKey(.routerWeight, layer: l), StatsKey(.sharedUp, layer: l), StatsKey(.sharedDown, layer: l),
                         StatsKey(.latentIn, layer: l), StatsKey(.latentOut, layer: l),
                         StatsKey(.expertUp, layer: l, expert: nil, fed: true)]
                for x in 0..<e.experts {
                    keys += [StatsKey(.expertUp, layer: l, expert: x), StatsKey(.expertDown, layer: l, expert: x),
                             StatsKey(.expertDown, layer: l, expert: x, fed: true)]
                }
            }
        }
        return keys
    }

    private static func layerIndex(_ name: String) -> Int? {
        let parts = name.split(separator: ".")
        guard parts.count > 1, parts[0] == "layers" else { return nil }
        return Int(parts[1])
    }

    private static func view(_ f: SafetensorsFile, _ name: String, _ dtype: DType, _ count: Int?) throws(FormatError) -> TensorView {
        guard let v = f.view(name) else { throw FormatError.missingTensor(file: f.path, tensor: name) }
        guard v.dtype == dtype else {
            throw FormatError.invalidTensor(file: f.path, tensor: name, message: "dtype \(v.dtype.rawValue), expected \(dtype.rawValue)")
        }
        if let c = count, v.elementCount != c {
            throw FormatError.shapeMismatch(file: f.path, tensor: name, expected: [c], actual: v.shape)
        }
        return v
    }

    private static func int64s(_ f: SafetensorsFile, _ name: String, count: Int) throws(FormatError) -> [Int64] {
        let v = try view(f, name, .i64, count)
        return (0..<count).map { v.bytes.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self) }
    }

    private static func floats<T: BinaryFloatingPoint>(_ f: SafetensorsFile, _ name: String, dtype: DType, count: Int?) throws(FormatError) -> [T] {
        let v = try view(f, name, dtype, count)
        let n = v.elementCount
        return (0..<n).map { v.bytes.loadUnaligned(fromByteOffset: $0 * dtype.byteSize, as: T.self) }
    }
}
