import Foundation
import XCTest
import Formats
import Quantize
import TestSupport

/// Issue 13 §1–2, §5: Hugging Face exports in the compressed-tensors layout — names, dtypes and
/// shapes; values read back exactly as our codecs wrote them; export → import → export
/// byte-identical; bad inputs refused naming file and tensor.
final class HFExportTests: ScratchDirectoryTestCase {
    typealias MemorySink = TensorSinkTests.MemorySink

    func recipe(_ b: Recipe.Builtin) -> Recipe { var r = Recipe.builtin(b); r.wholeInProj = true; return r }
    var asym: Recipe { var r = Recipe(name: "asym", defaultScheme: .int4(group: 64, symmetric: false)); r.wholeInProj = true; return r }

    func metadata(_ model: String) throws -> JSONObject {
        ["model": try JSONParser.parse(try MappedFile.contents(of: model + "/config.json"))]
    }

    /// Exports `model` into `out`; returns what the codecs wrote (the same conversion into memory).
    @discardableResult
    func export(_ model: String, _ r: Recipe, to out: String, shardBytes: Int = 5_000_000_000) throws -> MemorySink {
        let map = try TensorMap(checkpoint: try Checkpoint(path: model))
        let mem = MemorySink(rules: .anything)
        _ = try Converter(map: map, recipe: r).convert(into: mem, metadata: [:], blobs: [])
        let sink = try HFCheckpointSink(directory: out, layout: CompressedTensorsExport(), shardBytes: shardBytes)
        try sink.addBlob("tokenizer.json", try MappedFile.contents(of: model + "/tokenizer.json"))
        _ = try Converter(map: map, recipe: r).convert(into: sink, metadata: try metadata(model), blobs: [])
        return mem
    }

    /// Our codec's value of every tensor, from the sections it wrote.
    static func decoded(_ mem: MemorySink) throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (t, sections, attrs) in mem.tensors {
            let (rows, cols) = Recipe.storageShape(role: t.role, shape: t.shape)
            var v = [Float](repeating: 0, count: rows * cols)
            for s in attrs["segments"]!.arrayValue! {
                let r = s["rows"]!.arrayValue!, a = r[0].intValue!, b = r[1].intValue!
                let seg = TensorPlan.Segment(name: s["name"]!.stringValue!, rows: a..<b, scheme: QuantScheme(s["scheme"]!.stringValue!)!,
                                             blockRows: s["block_rows"]?.intValue)
                let codes = sections[seg.section("codes")]!, scales = sections[seg.section("scales")]
                let zeros = sections[seg.section("zero_points")], global = sections[seg.section("global_scales")]
                codes.withUnsafeBytes { c in
                    v.withUnsafeMutableBufferPointer { o in
                        SegmentCodec.decode(codes: c.baseAddress!, scales: scales?.withUnsafeBytes { UnsafeRawPointer($0.baseAddress!) },
                                            zeroPoints: zeros?.withUnsafeBufferPointer { $0.baseAddress! }, cols: cols, segment: seg,
                                            into: o.baseAddress! + a * cols,
                                            globalScales: global?.withUnsafeBytes { $0.baseAddress!.assumingMemoryBound(to: Float.self) })
                    }
                }
            }
            out[t.name] = v
        }
        return out
    }

    /// Every tensor of the export decodes to exactly our codec's values, bit for bit, for every
    /// scheme the layout writes (W4A16 sym with per-head out_proj groups and INT8 lm_head, W8A16,
    /// FP8 with per-head and per-expert scales expanded per row, W4A16 asymmetric).
    func testExportReadsBackToTheValuesWritten() throws {
        for model in Fixtures.models.map(Fixtures.model) {
            for (i, r) in [recipe(.int4), recipe(.int8), recipe(.fp8), asym].enumerated() {
                let out = dir + "/e\(i)-\(model.split(separator: "/").last!)"
                let mem = try export(model, r, to: out)
                let want = try Self.decoded(mem)
                let ck = try Checkpoint(path: out)
                XCTAssertEqual(ck.quantization?.summary.hasPrefix("compressed-tensors"), true)
                let map = try TensorMap(checkpoint: ck)
                XCTAssertEqual(map.tensors.count, mem.tensors.count)
                for t in map.tensors {
                    let got = try t.data.floats(), w = try XCTUnwrap(want[t.name], t.name)
                    XCTAssertEqual(got.count, w.count, t.name)
                    let bad = got.indices.first { got[$0].bitPattern != w[$0].bitPattern }
                    XCTAssertNil(bad, "\(r.name) \(t.name): element \(bad ?? -1) differs")
                }
            }
        }
    }

    /// The names, dtypes and shapes runtimes look for, and the config's quantization_config.
    func testLayoutOfTheTinyMoEInt4Export() throws {
        let out = dir + "/e"
        try export(Fixtures.tinyMoE, recipe(.int4), to: out)
        XCTAssertEqual(directoryListing(out), ["config.json", "model.safetensors", "tokenizer.json"])
        let f = try SafetensorsFile(path: out + "/model.safetensors")
        func entry(_ n: String) -> String? { f.info(n).map { "\($0.dtype.rawValue) \($0.shape)" } }
        // in_proj rows = 2·I + 2·G·N + H = 2·256 + 2·2·32 + 8 = 648, 256 columns.
        XCTAssertEqual(entry("backbone.layers.0.mixer.in_proj.weight_packed"), "I32 [648, 32]")
        XCTAssertEqual(entry("backbone.layers.0.mixer.in_proj.weight_scale"), "F32 [648, 2]")
        XCTAssertEqual(entry("backbone.layers.0.mixer.in_proj.weight_shape"), "I64 [2]")
        // out_proj groups follow heads (head_dim 32).
        XCTAssertEqual(entry("backbone.layers.0.mixer.out_proj.weight_scale"), "F32 [256, 8]")
        XCTAssertEqual(entry("backbone.layers.1.mixer.experts.3.up_proj.weight_packed"), "I32 [128, 32]")
        XCTAssertEqual(entry("backbone.layers.1.mixer.experts.3.down_proj.weight_scale"), "F32 [256, 1]")
        // lm_head INT8 per channel (W8A16): four codes a word.
        XCTAssertEqual(entry("lm_head.weight_packed"), "I32 [4096, 64]")
        XCTAssertEqual(entry("lm_head.weight_scale"), "F32 [4096, 1]")
        // High precision as in the recipe: conv1d and norms in the source dtype, A_log, D and the router in F32.
        XCTAssertEqual(entry("backbone.layers.0.mixer.conv1d.weight"), "BF16 [384, 1, 4]")
        XCTAssertEqual(entry("backbone.layers.0.mixer.A_log"), "F32 [8]")
        XCTAssertEqual(entry("backbone.layers.1.mixer.gate.weight"), "F32 [16, 256]")
        XCTAssertEqual(entry("backbone.embeddings.weight"), "BF16 [4096, 256]")
        XCTAssertNil(entry("backbone.layers.0.mixer.in_proj.weight"))
        XCTAssertEqual(f.metadata, ["format": "pt"])

        let config = try JSONParser.parse(try MappedFile.contents(of: out + "/config.json"))
        let q = try XCTUnwrap(config["quantization_config"])
        XCTAssertEqual(q["quant_method"], "compressed-tensors")
        XCTAssertEqual(q["format"], "pack-quantized")
        XCTAssertEqual(q["quantization_status"], "compressed")
        let groups = try XCTUnwrap(q["config_groups"]?.objectValue)
        let schemes = groups.map { _, g in JSONWriter.string(g["weights"]!, options: .init(sortKeys: true)) }
        XCTAssertEqual(Set(schemes), [
            #"{"dynamic":false,"group_size":128,"num_bits":4,"strategy":"group","symmetric":true,"type":"int"}"#,
            #"{"dynamic":false,"group_size":32,"num_bits":4,"strategy":"group","symmetric":true,"type":"int"}"#,
            #"{"dynamic":false,"group_size":null,"num_bits":8,"strategy":"channel","symmetric":true,"type":"int"}"#,
        ])
        let lm = groups.first { _, g in g["weights"]?["num_bits"] == 8 }!.value
        XCTAssertEqual(lm["targets"], ["lm_head"])
        // Every high-precision module with a weight matrix is named in `ignore`: the embedding and the routers.
        XCTAssertEqual(q["ignore"], ["backbone.embeddings", "backbone.layers.1.mixer.gate", "backbone.layers.3.mixer.gate",
                                     "backbone.layers.6.mixer.gate", "backbone.layers.8.mixer.gate", "backbone.layers.10.mixer.gate",
                                     "backbone.layers.13.mixer.gate"])
        // The source config is kept otherwise.
        XCTAssertEqual(config["hybrid_override_pattern"], "MEMEM*EMEMEM*E")
    }

    /// Converting an export with the recipe that made it copies codes and scales: every file of
    /// the second export is byte for byte the first's.
    func testExportImportExportIsByteIdentical() throws {
        for (i, r) in [recipe(.int4), recipe(.int8), recipe(.fp8), asym].enumerated() {
            let a = dir + "/a\(i)", b = dir + "/b\(i)"
            try export(Fixtures.tinyMoE, r, to: a, shardBytes: 4 << 20)
            try export(a, r, to: b, shardBytes: 4 << 20)
            XCTAssertEqual(directoryListing(a), directoryListing(b))
            XCTAssertGreaterThan(directoryListing(a).filter { $0.hasSuffix(".safetensors") }.count, 1, "sharded")
            for n in directoryListing(a) {
                XCTAssertEqual(FileManager.default.contents(atPath: a + "/" + n), FileManager.default.contents(atPath: b + "/" + n), "\(r.name): \(n)")
            }
        }
    }

    /// Shards: an index naming every tensor's shard, the shards holding exactly those tensors.
    func testShardsAndIndex() throws {
        let out = dir + "/s"
        try export(Fixtures.tinyMoE, recipe(.int8), to: out, shardBytes: 3 << 20)
        let index = try JSONParser.parse(try MappedFile.contents(of: out + "/model.safetensors.index.json"))
        let map = try XCTUnwrap(index["weight_map"]?.objectValue)
        let shards = Set(map.map { $0.value.stringValue! })
        XCTAssertEqual(shards, Set(directoryListing(out).filter { $0.hasPrefix("model-") }))
        XCTAssertTrue(shards.contains("model-00001-of-0000\(shards.count).safetensors"))
        var total = 0
        for s in shards {
            let f = try SafetensorsFile(path: out + "/" + s)
            for t in f.tensors { XCTAssertEqual(map[t.name]?.stringValue, s, t.name); total += t.byteCount }
        }
        XCTAssertEqual(index["metadata"]?["total_size"]?.intValue, total)
        XCTAssertEqual(map.count, try Checkpoint(path: out).tensorNames.count)
    }

    /// One scheme per tensor, groups that divide the row: refused at plan time with the reason.
    func testPlansTheFormatCannotStoreAreRefused() throws {
        let map = try TensorMap(checkpoint: try Checkpoint(path: Fixtures.tinyMoE))
        let rules = CompressedTensorsExport().rules
        let mixed = try Converter(map: map, recipe: Recipe.builtin(.int4)).violations(of: MemorySink(rules: rules))
        XCTAssertTrue(mixed.contains { $0.hasPrefix("backbone.layers.0.mixer.in_proj.weight: mixes schemes across its rows") }, "\(mixed)")
        var r = Recipe(name: "g96", defaultScheme: .int4(group: 96, symmetric: true)); r.wholeInProj = true
        let v = try Converter(map: map, recipe: r).violations(of: MemorySink(rules: rules))
        XCTAssertTrue(v.contains { $0.contains("scheme int4-g96-sym is not one a compressed-tensors export stores") }, "\(v)")
        let fp4 = try Converter(map: map, recipe: recipe(.nvfp4)).violations(of: MemorySink(rules: rules))
        XCTAssertTrue(fp4.contains { $0.contains("nvfp4: compressed-tensors divides by its global scale") }, "\(fp4)")
        let out = dir + "/x"
        XCTAssertThrowsError(try export(Fixtures.tinyMoE, Recipe.builtin(.int4), to: out)) { e in
            XCTAssertTrue("\(e)".contains("compressed-tensors export"), "\(e)")
        }
        XCTAssertEqual(directoryListing(dir).filter { $0.contains("x") }, [], "nothing left behind")
    }

    /// The output must be new or empty; a non-empty directory is refused before anything is written.
    func testOutputMustBeNewOrEmpty() throws {
        let out = dir + "/full"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: out + "/keep.txt", contents: Data("x".utf8))
        XCTAssertThrowsError(try HFCheckpointSink(directory: out, layout: CompressedTensorsExport())) { e in
            XCTAssertTrue("\(e)".contains("is not empty ('keep.txt')"), "\(e)")
        }
        let empty = dir + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try export(Fixtures.tinyDense, recipe(.int8), to: empty)
        XCTAssertTrue(directoryListing(empty).contains("model.safetensors"))
    }

    // MARK: Bad inputs

    /// Rewrites the export's one shard with `edit` applied to its tensors.
    func rewrite(_ out: String, _ edit: (inout [(TensorDeclaration, [UInt8])]) -> Void) throws {
        let f = try SafetensorsFile(path: out + "/model.safetensors")
        var ts: [(TensorDeclaration, [UInt8])] = f.tensors.map { t in
            (TensorDeclaration(name: t.name, dtype: t.dtype, shape: t.shape), Array(f.view(t.name)!.bytes))
        }
        edit(&ts)
        try FileManager.default.removeItem(atPath: out + "/model.safetensors")
        try SafetensorsWriter.write(to: out + "/model.safetensors", tensors: ts)
    }

    func assertRefused(_ out: String, _ contains: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try TensorMap(checkpoint: try Checkpoint(path: out)), file: file, line: line) { e in
            for c in contains { XCTAssertTrue("\(e)".contains(c), "'\(c)' not in: \(e)", file: file, line: line) }
        }
    }

    func testBadInputsAreRefusedNamingFileAndTensor() throws {
        let name = "backbone.layers.0.mixer.out_proj"
        // NaN scale.
        var out = dir + "/nan"
        try export(Fixtures.tinyMoE, recipe(.int4), to: out)
        try rewrite(out) { ts in
            let i = ts.firstIndex { $0.0.name == name + ".weight_scale" }!
            ts[i].1.replaceSubrange(4..<8, with: [0x00, 0x00, 0xC0, 0x7F])
        }
        assertRefused(out, [out + "/model.safetensors", name + ".weight_scale", "nan"])
        // Missing weight_shape.
        out = dir + "/noshape"
        try export(Fixtures.tinyMoE, recipe(.int4), to: out)
        try rewrite(out) { ts in ts.removeAll { $0.0.name == name + ".weight_shape" } }
        assertRefused(out, [name + ".weight_packed", "without its " + name + ".weight_shape"])
        // Scale of the wrong shape.
        out = dir + "/shape"
        try export(Fixtures.tinyMoE, recipe(.int4), to: out)
        try rewrite(out) { ts in
            let i = ts.firstIndex { $0.0.name == name + ".weight_scale" }!
            ts[i].0.shape = [ts[i].0.shape[0] * ts[i].0.shape[1] / 2, 2]
        }
        assertRefused(out, [name + ".weight_scale", "is neither per channel"])
        // Unknown compression format and quantization type.
        out = dir + "/format"
        try export(Fixtures.tinyMoE, recipe(.int4), to: out)
        var c = try JSONParser.parse(try MappedFile.contents(of: out + "/config.json")).objectValue!
        var q = c["quantization_config"]!.objectValue!
        q["format"] = "marlin-24"
        c["quantization_config"] = .object(q)
        try Data(JSONWriter.bytes(.object(c))).write(to: URL(fileURLWithPath: out + "/config.json"))
        assertRefused(out, [out + "/config.json", "compressed-tensors format 'marlin-24' is not read"])
        q["format"] = "pack-quantized"
        var g = q["config_groups"]!.objectValue!
        var g0 = g["group_0"]!.objectValue!
        var w = g0["weights"]!.objectValue!
        w["num_bits"] = 3
        g0["weights"] = .object(w); g["group_0"] = .object(g0); q["config_groups"] = .object(g); c["quantization_config"] = .object(q)
        try Data(JSONWriter.bytes(.object(c))).write(to: URL(fileURLWithPath: out + "/config.json"))
        assertRefused(out, ["config group 'group_0': int 3-bit weights"])
    }

    /// Python cross-check: our int32-packed codes, unpacked by compressed-tensors' rule
    /// (`unpack_from_int32`: element j at bits b·j, minus 2^(b−1)) with numpy and the safetensors
    /// package, times the stored scales, equal our decoded values.
    func testPythonUnpacksOurCodesToOurValues() throws {
        let py = "/usr/bin/env"
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: py)
        probe.arguments = ["python3", "-c", "import safetensors, numpy"]
        try probe.run(); probe.waitUntilExit()
        guard probe.terminationStatus == 0 else { throw XCTSkip("python3 with safetensors and numpy is not installed (pip install safetensors numpy)") }
        for (i, r) in [recipe(.int4), recipe(.int8), asym].enumerated() {
            let out = dir + "/py\(i)"
            let mem = try export(Fixtures.tinyMoE, r, to: out)
            let want = try Self.decoded(mem)
            // Our values of every packed weight, for Python to compare against.
            var ts: [(TensorDeclaration, [UInt8])] = []
            for (name, v) in want.sorted(by: { $0.key < $1.key }) where name.hasSuffix(".weight") {
                let t = mem.tensors.first { $0.0.name == name }!.0
                guard t.shape.count == 2 else { continue }
                ts.append((TensorDeclaration(name: name, dtype: .f32, shape: t.shape), v.withUnsafeBytes { Array($0) }))
            }
            try SafetensorsWriter.write(to: dir + "/want\(i).safetensors", tensors: ts)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: py)
            p.arguments = ["python3", Fixtures.root + "/../scripts/ct-unpack-check.py", out, dir + "/want\(i).safetensors"]
            let pipe = Pipe(); p.standardOutput = pipe; p.standardError = pipe
            try p.run(); p.waitUntilExit()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            XCTAssertEqual(p.terminationStatus, 0, text)
            XCTAssertTrue(text.contains("packed tensors equal"), text)
        }
    }
}
