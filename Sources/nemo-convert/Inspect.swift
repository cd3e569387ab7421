import ArgumentParser
import Formats

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's architecture, parameter counts, dtypes and tensor table.")

    @Argument(help: "A model directory (config.json + safetensors), a .safetensors file, or a packed file.")
    var model: String

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        let report: ModelReport
        do { report = try Self.load(model) } catch { fail(error) }
        if json {
            print(JSONWriter.string(report.json, pretty: true))
        } else {
            print(Self.text(report), terminator: "")
        }
    }

    /// The one place that knows input formats: a packed file will be recognised here (by its
    /// magic bytes) and produce a `ModelReport` of its own.
    static func load(_ path: String) throws(FormatError) -> ModelReport {
        let ck = try Checkpoint(path: path)
        let map = try TensorMap(checkpoint: ck)
        return ModelReport(checkpoint: ck, map: map)
    }

    static func text(_ r: ModelReport) -> String {
        let c = r.config
        var s = ""
        func line(_ t: String) { s += t + "\n" }
        line("model        \(r.path) (\(r.format), \(r.fileCount) file\(r.fileCount == 1 ? "" : "s"))")
        line("type         \(c.modelType)")
        let kinds = r.layerCounts.map { "\($0.count) \($0.kind.name)" }.joined(separator: ", ")
        line("pattern      \(c.pattern)  (\(c.layers.count) layers: \(kinds))")
        line("hidden       \(c.hiddenSize), vocab \(c.vocabSize), norm eps \(c.normEps), tied embeddings \(c.tieWordEmbeddings ? "yes" : "no")")
        if let m = c.mamba {
            line("mamba        \(m.heads) heads × \(m.headDim), \(m.groups) groups, state \(m.stateSize), conv \(m.convKernel), chunk \(m.chunkSize); in_proj \(m.inProjRows) rows, conv_dim \(m.convDim); dt limit (\(m.timeStepLimit.0), \(m.timeStepLimit.1))")
        }
        if let a = c.attention {
            line("attention    \(a.heads) heads, \(a.kvHeads) kv heads, head_dim \(a.headDim)")
        }
        if let m = c.mlp { line("mlp          width \(m.intermediateSize), relu2") }
        if let e = c.moe {
            let shared = e.sharedExperts > 0 ? ", \(e.sharedExperts) shared of \(e.sharedIntermediateSize)" : ""
            let latent = e.latentSize.map { ", latent \($0)" } ?? ""
            line("moe          \(e.experts) experts of \(e.intermediateSize), top \(e.topK)\(shared), routed scaling \(e.routedScalingFactor)\(latent)")
        }
        let st = r.stats
        var params = "parameters   \(grouped(st.parameters)) total"
        if c.moe != nil { params += ", \(grouped(st.activeParameters)) active per token" }
        if st.bufferElements > 0 { params += " (+\(grouped(st.bufferElements)) router-bias buffer elements)" }
        line(params)
        let bytes = st.dtypesBySize.map { "\($0.dtype.rawValue) \(humanBytes($0.bytes))" }.joined(separator: ", ")
        line("bytes        \(humanBytes(st.totalBytes)) (\(bytes))")
        line("")

        let shapes = r.rows.map { "[" + $0.shape.map(String.init).joined(separator: ", ") + "]" }
        let roles = r.rows.map { $0.role?.rawValue ?? "(\($0.note ?? "unused"))" }
        let w0 = max(4, r.rows.map(\.name.count).max() ?? 0)
        let w1 = max(5, r.rows.map(\.dtype.count).max() ?? 0)
        let w2 = max(5, shapes.map(\.count).max() ?? 0)
        line(pad("name", w0) + "  " + pad("dtype", w1) + "  " + pad("shape", w2) + "  role")
        for (i, row) in r.rows.enumerated() {
            line(pad(row.name, w0) + "  " + pad(row.dtype, w1) + "  " + pad(shapes[i], w2) + "  " + roles[i])
        }
        return s
    }
}

func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }

/// 10932880 → "10,932,880": parameter counts are read by people.
func grouped(_ n: Int) -> String {
    let d = String(n.magnitude)
    var out = ""
    for (i, ch) in d.enumerated() {
        if i > 0 && (d.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return n < 0 ? "-" + out : out
}

func humanBytes(_ n: Int) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var v = Double(n), u = 0
    while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
    if u == 0 { return "\(n) B" }
    let r = (v * 10).rounded() / 10
    return "\(r) \(units[u])"
}
