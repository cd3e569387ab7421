import ArgumentParser
import Formats
import Quantize
import Foundation
import Model

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's architecture, parameter counts, dtypes and tensor table.",
        discussion: """
        For a packed file, also each tensor's scheme, scale layout, stored bytes and bits per weight, \
        and the recipe, producer and source checksums it was made with. --verify reads every byte: \
        for a packed file it checks every section's xxHash64 (exit 65 naming the first damaged tensor \
        and section); for a safetensors checkpoint it counts NaN and infinite values per tensor \
        (exit 65 if there are any).
        """)

    @Argument(help: "A model directory (config.json + safetensors), a .safetensors file, or a packed file.")
    var model: String

    @Flag(help: "Read every tensor in full and check it (checksums of a packed file; non-finite values of a checkpoint).")
    var verify = false

    @Option(help: "Threads for --verify (default: all cores).")
    var threads: Int?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let ok: Bool
        do {
            switch try ModelFormat.detect(model) {
            case .packed: ok = try runPacked()
            case .gguf: ok = try runGGUF()
            default: ok = try runCheckpoint()
            }
        } catch { fail(error) }
        if !ok { throw Exit.badInput }
    }

    /// A model's report, whatever its format (`ModelFormat`).
    static func load(_ path: String) throws -> ModelReport {
        switch try ModelFormat.detect(path) {
        case .packed: return try report(PackedInspection(file: PackedFile(path: path)))
        case .gguf: return ModelReport(gguf: try GGUFModel.open(path, allowUnexpected: true))
        default: break
        }
        let ck = try Checkpoint(path: path)
        let map = try TensorMap(checkpoint: ck, allowUnexpected: true)
        return ModelReport(checkpoint: ck, map: map)
    }

    /// A packed file as the checkpoint-shaped report: the architecture from its stored config,
    /// parameters counted the same way, and each tensor's scheme in place of its dtype.
    static func report(_ p: PackedInspection) -> ModelReport {
        ModelReport(path: p.path, format: "nemo-convert packed v\(p.formatVersion)", fileCount: 1, config: p.config,
                    stats: p.stats, rows: p.tensors.map {
                        ModelReport.Row(name: $0.name, dtype: $0.scheme, shape: $0.shape, role: $0.role, layer: $0.layer, note: nil)
                    })
    }

    private func runCheckpoint() throws -> Bool {
        let ck = try Checkpoint(path: model)
        let report = ModelReport(checkpoint: ck, map: try TensorMap(checkpoint: ck, allowUnexpected: true))
        let scan = verify ? CheckpointScan.run(ck, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount) : nil
        if json {
            var o = report.json.objectValue!
            if let s = scan { o["verify"] = s.json }
            print(JSONWriter.string(.object(o), pretty: true))
        } else {
            print(Self.text(report), terminator: "")
            if let s = scan { print(Self.text(s), terminator: "") }
        }
        return scan?.ok ?? true
    }

    /// A GGUF file: its report; --verify decodes every tensor and counts non-finite values.
    private func runGGUF() throws -> Bool {
        let g = try GGUFModel.open(model, allowUnexpected: true)
        let report = ModelReport(gguf: g)
        var bad: [(String, Int)] = []
        if verify {
            for t in g.map.tensors {
                let v = try t.data.floats()
                let n = v.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
                if n > 0 { bad.append((t.name, n)) }
            }
        }
        if json {
            var o = report.json.objectValue!
            o["format"] = "gguf"
            o["metadata_keys"] = .int(g.file.metadata.count)
            if verify { o["verify"] = ["ok": .bool(bad.isEmpty), "non_finite": .object(JSONObject(bad.map { ($0.0, .int($0.1)) }))] }
            print(JSONWriter.string(.object(o), pretty: true))
        } else {
            print(Self.text(report), terminator: "")
            if verify {
                print(bad.isEmpty ? "verify       every tensor decoded, all values finite" : "verify       non-finite values in \(bad.count) tensor(s):")
                for (n, k) in bad { print("  \(n): \(k)") }
            }
        }
        return bad.isEmpty
    }

    private func runPacked() throws -> Bool {
        let file = try PackedFile(path: model)
        let p = try PackedInspection(file: file)
        let check = verify ? PackedVerification.run(file, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount) : nil
        if json {
            var o = Self.report(p).json.objectValue!
            o["format"] = "nemo-convert-packed"
            for (k, v) in p.json { o[k] = v }
            if let c = check { o["verify"] = c.json }
            print(JSONWriter.string(.object(o), pretty: true))
        } else {
            print(Self.text(p), terminator: "")
            if let c = check { print(Self.text(c), terminator: "") }
        }
        if let f = check?.firstFailure {
            var stderr = StandardError()
            print("error: \(f)", to: &stderr)
        }
        return check?.ok ?? true
    }

    // MARK: text

    static func text(_ r: ModelReport) -> String {
        var s = ""
        func line(_ t: String) { s += t + "\n" }
        line("model        \(r.path) (\(r.format), \(r.fileCount) file\(r.fileCount == 1 ? "" : "s"))")
        s += architecture(r)
        let st = r.stats
        let bytes = st.dtypesBySize.map { "\($0.dtype.rawValue) \(humanBytes($0.bytes))" }.joined(separator: ", ")
        line("bytes        \(humanBytes(st.totalBytes)) (\(bytes))")
        line("")

        let shapes = r.rows.map { shapeText($0.shape) }
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

    /// Type, pattern, dimensions and parameter counts: the lines a checkpoint and a pack share.
    static func architecture(_ r: ModelReport) -> String {
        let c = r.config
        var s = ""
        func line(_ t: String) { s += t + "\n" }
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
        return s
    }

    static func text(_ p: PackedInspection) -> String {
        var s = ""
        func line(_ t: String) { s += t + "\n" }
        line("model        \(p.path) (nemo-convert packed v\(p.formatVersion), \(humanBytes(p.fileBytes)))")
        s += architecture(report(p))
        if let pr = p.producer {
            line("producer     \(pr["name"]?.stringValue ?? "?") \(pr["version"]?.stringValue ?? "")")
        }
        if let r = p.recipe { line("recipe       " + recipeText(r)) }
        for src in p.sources {
            let bytes = src["bytes"]?.intValue.map(humanBytes) ?? "?"
            line("source       \(src["file"]?.stringValue ?? "?"), \(bytes), header xxh64 \(src["header_xxh64"]?.stringValue ?? "?")")
        }
        for (name, sec) in p.blobs {
            let how = sec.encoding == .raw ? "raw" : "\(sec.encoding.rawValue), \(humanBytes(sec.length)) stored"
            line("blob         \(name), \(humanBytes(sec.rawLength)) (\(how))")
        }
        let sourceTypes = p.stats.dtypesBySize.map { "\($0.dtype.rawValue) \(humanBytes($0.bytes))" }.joined(separator: ", ")
        line("stored       \(humanBytes(p.storedTensorBytes)) of tensors from \(humanBytes(p.sourceBytes)) (\(sourceTypes)): \(fixed(p.bitsPerWeight, 3)) bits per weight, \(fixed(p.compression, 2))× smaller")
        line("schemes      " + p.bytesByScheme.map { "\($0.scheme) \(humanBytes($0.bytes)) (\($0.segments) segment\($0.segments == 1 ? "" : "s"))" }.joined(separator: ", "))
        line("")

        // One line per tensor; tensors with several segments (Mamba in_proj) get one indented
        // line per segment underneath.
        var rows: [[String]] = [["name", "shape", "scheme", "stored", "bits/w", "ratio", "layout"]]
        for t in p.tensors {
            let single = t.segments.count == 1
            rows.append([t.name, shapeText(t.shape), t.scheme, humanBytes(t.storedBytes), fixed(t.bitsPerWeight, 2),
                         fixed(t.compression, 2) + "×", single ? t.segments[0].layout : ""])
            if !single {
                for g in t.segments {
                    rows.append(["  \(pad(g.name, 2))  rows \(g.rows.lowerBound)..<\(g.rows.upperBound)", "", g.scheme.description,
                                 humanBytes(g.storedBytes), "", "", g.layout])
                }
            }
        }
        s += table(rows)
        return s
    }

    static func recipeText(_ r: JSONValue) -> String {
        var t = "\(r["name"]?.stringValue ?? "?"): default \(r["default"]?.stringValue ?? "?")"
        // The two layout switches matter only where their scheme is used somewhere in the recipe.
        let schemes = [r["default"]?.stringValue ?? ""] + (r["rules"]?.arrayValue ?? []).compactMap { $0["scheme"]?.stringValue }
        if r["per_head_scales"]?.boolValue == true && schemes.contains("fp8-tensor") { t += ", fp8-tensor scales per SSM head / group" }
        if r["out_proj_group_by_head"]?.boolValue == true && schemes.contains(where: { $0.hasPrefix("int4") }) {
            t += ", out_proj INT4 groups follow heads"
        }
        let rules = (r["rules"]?.arrayValue ?? []).map { rule -> String in
            var what: [String] = []
            if let v = rule["role"]?.stringValue { what.append(v) }
            if let v = rule["name"]?.stringValue { what.append(v) }
            if let v = rule["layers"]?.arrayValue { what.append("layers " + v.compactMap { $0.intValue.map(String.init) }.joined(separator: ",")) }
            if let v = rule["segment"]?.stringValue { what.append("segment \(v)") }
            return what.joined(separator: " ") + " → " + (rule["scheme"]?.stringValue ?? "?")
        }
        if !rules.isEmpty { t += "; rules: " + rules.joined(separator: ", ") }
        return t
    }

    static func text(_ c: PackedVerification) -> String {
        var s = "\nverify\n"
        for i in c.items {
            if let f = i.failure { s += "FAIL  \(i.name): \(f)\n" } else { s += "OK    \(i.name) (\(i.sections) section\(i.sections == 1 ? "" : "s"), \(humanBytes(i.bytes)))\n" }
        }
        let verdict = c.ok ? "all \(c.items.count) tensors and blobs OK"
            : "\(c.failures.count) of \(c.items.count) damaged; first: \(c.firstFailure!)"
        s += "checked      \(humanBytes(c.bytesChecked)) in \(fixed(c.seconds, 2)) s: \(verdict)\n"
        return s
    }

    static func text(_ c: CheckpointScan) -> String {
        var s = "\nverify (safetensors has no checksums: every tensor read in full, NaN and infinities counted)\n"
        for i in c.items {
            if i.nonFinite > 0 {
                s += "FAIL  \(i.name): \(grouped(i.nan)) NaN, \(grouped(i.infinite)) infinite of \(grouped(i.elements)) (\(i.file))\n"
            } else {
                s += "OK    \(i.name)\n"
            }
        }
        let verdict = c.ok ? "all \(c.items.count) tensors finite" : "\(c.damaged.count) of \(c.items.count) tensors hold non-finite values"
        s += "read         \(humanBytes(c.bytesRead)) in \(fixed(c.seconds, 2)) s: \(verdict)\n"
        return s
    }
}

func shapeText(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }

/// Left-aligned columns, two spaces apart; the last column is not padded.
func table(_ rows: [[String]]) -> String {
    guard let n = rows.first?.count else { return "" }
    var w = [Int](repeating: 0, count: n)
    for r in rows { for (i, c) in r.enumerated() where i < n - 1 { w[i] = max(w[i], c.count) } }
    var s = ""
    for r in rows {
        var l = ""
        for (i, c) in r.enumerated() { l += i < n - 1 ? pad(c, w[i]) + "  " : c }
        while l.hasSuffix(" ") { l.removeLast() }
        s += l + "\n"
    }
    return s
}

func fixed(_ x: Double, _ digits: Int) -> String {
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let v = (x * p).rounded() / p
    var t = String(v)
    if let dot = t.firstIndex(of: ".") {
        let have = t.distance(from: dot, to: t.endIndex) - 1
        if have < digits { t += String(repeating: "0", count: digits - have) }
    } else if digits > 0 {
        t += "." + String(repeating: "0", count: digits)
    }
    return t
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
