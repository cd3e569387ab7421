import Foundation
import XCTest
import Formats
import Quantize
import TestSupport

/// Issue 13 §1, §3: exports in NVIDIA ModelOpt's layout — names, dtypes and shapes, the JSON
/// ModelOpt writes, static input and KV scales from calibration's amax, values read back exactly,
/// export → import → export byte-identical, and what the layout cannot hold refused at plan time.
final class ModelOptExportTests: ScratchDirectoryTestCase {
    typealias MemorySink = TensorSinkTests.MemorySink
    let moe = Fixtures.model("nemotron-h-tiny-moe")

    func recipe(_ b: Recipe.Builtin) -> Recipe { var r = Recipe.builtin(b); r.wholeInProj = true; r.fitPerTensorExport(); return r }

    /// FP8 by default, routed experts NVFP4: ModelOpt's MIXED_PRECISION.
    var mixed: Recipe {
        var r = Recipe(name: "mixed-fp", defaultScheme: .fp8Tensor, rules: [
            .init(role: .expertUp, scheme: "nvfp4"), .init(role: .expertDown, scheme: "nvfp4")], perHeadScales: false)
        r.wholeInProj = true
        r.fitPerTensorExport()
        return r
    }

    /// What calibration would hand the sink: an input amax per weight (a made-up but distinct
    /// value), and the K/V projections' output amax.
    func attributes(_ t: BoundTensor) -> JSONObject {
        ["input_absmax": .number(Double(Float(1.5) + Float(t.name.utf8.count % 7) / 8)),
         "output_absmax": .number(t.role == .attnK ? 900 : 12)]
    }

    /// Exports `model` with `r` into `out` (and the same conversion into memory, returned).
    @discardableResult
    func export(_ model: String, _ r: Recipe, to out: String, kv: Bool = true) throws -> MemorySink {
        let map = try TensorMap(checkpoint: try Checkpoint(path: model))
        let mem = MemorySink(rules: .anything)
        let sink = try HFCheckpointSink(directory: out, layout: ModelOptExport(kvCacheFP8: kv))
        let conv = Converter(map: map, recipe: r)
        let plans = try conv.plans()
        try SinkCheck.require(plans, fit: sink)
        for (t, p) in plans {
            _ = try conv.writeTensor(t, p, to: mem, attributes: attributes(t))
            _ = try conv.writeTensor(t, p, to: sink, attributes: attributes(t))
        }
        try conv.finish(sink, metadata: ["model": try JSONParser.parse(try MappedFile.contents(of: model + "/config.json"))], blobs: [])
        return mem
    }

    func f32(_ f: SafetensorsFile, _ name: String) throws -> Float {
        let v = try XCTUnwrap(f.view(name), name)
        XCTAssertEqual(v.dtype, .f32, name); XCTAssertEqual(v.shape, [], name)
        return try v.floats()[0]
    }

    /// Every tensor of FP8, NVFP4 and mixed exports of both fixtures decodes to exactly our
    /// codec's values; each quantized weight carries input_scale = amax / 448 (FP8) or
    /// amax / 2688 (NVFP4), bit for bit as ModelOpt computes it in Float32.
    func testExportReadsBackToTheValuesWritten() throws {
        for model in Fixtures.models.map(Fixtures.model) {
            for (i, r) in [recipe(.nvidiaFP8), recipe(.nvidiaNVFP4), mixed, recipe(.fp8)].enumerated() {
                let out = dir + "/e\(i)-\(model.split(separator: "/").last!)"
                let mem = try export(model, r, to: out)
                let want = try HFExportTests.decoded(mem)
                let ck = try Checkpoint(path: out)
                // The dense fixture has no routed experts, so its "mixed" export is all FP8.
                XCTAssertEqual(ck.quantization?.summary, i == 2 && model.hasSuffix("moe") ? "ModelOpt MIXED_PRECISION, FP8 KV cache scales" : i == 1 ? "ModelOpt NVFP4, FP8 KV cache scales" : "ModelOpt FP8, FP8 KV cache scales")
                let map = try TensorMap(checkpoint: ck)
                XCTAssertEqual(map.tensors.count, mem.tensors.count)
                let f = try SafetensorsFile(path: out + "/model.safetensors")
                for t in map.tensors {
                    let got = try t.data.floats(), w = try XCTUnwrap(want[t.name], t.name)
                    XCTAssertEqual(got.count, w.count, t.name)
                    let bad = got.indices.first { got[$0].bitPattern != w[$0].bitPattern }
                    XCTAssertNil(bad, "\(r.name) \(t.name): element \(bad ?? -1) differs")
                    let stem = String(t.name.dropLast(7))
                    if let e = t.data.encoded {
                        let amax = Float(attributes(t)["input_absmax"]!.doubleValue!)
                        XCTAssertEqual(try f32(f, stem + ".input_scale").bitPattern, (amax / (e.codeDType == .u8 ? 2688 : 448)).bitPattern, t.name)
                    } else {
                        XCTAssertNil(f.info(stem + ".input_scale"), t.name)
                    }
                }
                // K/V scales: max(amax / 448, 1), ModelOpt's clamp for an FP8 KV cache.
                XCTAssertEqual(try f32(f, "backbone.layers.5.mixer.k_proj.k_scale"), 900 / 448)
                XCTAssertEqual(try f32(f, "backbone.layers.5.mixer.v_proj.v_scale"), 1)
            }
        }
    }

    /// NVIDIA's FP8 preset on the MoE fixture: the tensors of one Mamba layer, one feeding
    /// attention, one attention and one MoE layer, and both JSON files, as ModelOpt writes them.
    func testLayoutOfTheNvidiaFP8Export() throws {
        let out = dir + "/fp8"
        try export(moe, recipe(.nvidiaFP8), to: out)
        let f = try SafetensorsFile(path: out + "/model.safetensors")
        func entry(_ n: String) -> String? { f.info(n).map { "\($0.dtype.rawValue) \($0.shape)" } }
        let want: [(String, String?)] = [
            ("backbone.layers.0.mixer.in_proj.weight", "F8_E4M3 [648, 256]"), ("backbone.layers.0.mixer.in_proj.weight_scale", "F32 []"),
            ("backbone.layers.0.mixer.in_proj.input_scale", "F32 []"), ("backbone.layers.0.mixer.out_proj.weight", "F8_E4M3 [256, 256]"),
            ("backbone.layers.0.mixer.conv1d.weight", "BF16 [384, 1, 4]"), ("backbone.layers.0.mixer.A_log", "BF16 [8]"),
            ("backbone.layers.0.mixer.D", "BF16 [8]"), ("backbone.layers.0.mixer.dt_bias", "BF16 [8]"),
            ("backbone.layers.4.mixer.in_proj.weight", "BF16 [648, 256]"), ("backbone.layers.4.mixer.in_proj.weight_scale", nil),
            ("backbone.layers.4.mixer.out_proj.weight", "BF16 [256, 256]"),
            ("backbone.layers.5.mixer.q_proj.weight", "BF16 [256, 256]"), ("backbone.layers.5.mixer.k_proj.k_scale", "F32 []"),
            ("backbone.layers.5.mixer.v_proj.v_scale", "F32 []"), ("backbone.layers.5.mixer.q_proj.input_scale", nil),
            ("backbone.layers.1.mixer.gate.weight", "F32 [16, 256]"), ("backbone.layers.1.mixer.gate.e_score_correction_bias", "F32 [16]"),
            ("backbone.layers.1.mixer.experts.3.up_proj.weight", "F8_E4M3 [128, 256]"),
            ("backbone.layers.1.mixer.experts.3.up_proj.weight_scale", "F32 []"),
            ("backbone.layers.1.mixer.shared_experts.down_proj.weight", "F8_E4M3 [256, 256]"),
            ("backbone.embeddings.weight", "BF16 [4096, 256]"), ("lm_head.weight", "BF16 [4096, 256]"),
        ]
        for (n, e) in want { XCTAssertEqual(entry(n), e, n) }
        let side = try JSONParser.parse(try MappedFile.contents(of: out + "/hf_quant_config.json"))
        let exclude = ["lm_head", "backbone.layers.0.mixer.conv1d", "backbone.layers.1.mixer.gate", "backbone.layers.2.mixer.conv1d",
                       "backbone.layers.3.mixer.gate", "backbone.layers.4.mixer.in_proj", "backbone.layers.4.mixer.conv1d",
                       "backbone.layers.4.mixer.out_proj", "backbone.layers.5.mixer.q_proj", "backbone.layers.5.mixer.k_proj",
                       "backbone.layers.5.mixer.v_proj", "backbone.layers.5.mixer.o_proj", "backbone.layers.6.mixer.gate",
                       "backbone.layers.7.mixer.conv1d", "backbone.layers.8.mixer.gate", "backbone.layers.9.mixer.conv1d",
                       "backbone.layers.10.mixer.gate", "backbone.layers.11.mixer.in_proj", "backbone.layers.11.mixer.conv1d",
                       "backbone.layers.11.mixer.out_proj", "backbone.layers.12.mixer.q_proj", "backbone.layers.12.mixer.k_proj",
                       "backbone.layers.12.mixer.v_proj", "backbone.layers.12.mixer.o_proj", "backbone.layers.13.mixer.gate"]
        let q: JSONValue = ["quant_algo": "FP8", "kv_cache_quant_algo": "FP8", "exclude_modules": .array(exclude.map { .string($0) })]
        XCTAssertEqual(side["quantization"], q)
        XCTAssertEqual(side["producer"], ["name": "modelopt", "version": "0.29.0"])
        let config = try JSONParser.parse(try MappedFile.contents(of: out + "/config.json"))
        let fp8: JSONValue = ["dynamic": false, "num_bits": 8, "type": "float"]
        let qc: JSONValue = ["config_groups": ["group_0": ["input_activations": fp8, "weights": fp8, "targets": ["Linear"]]],
                             "ignore": .array(exclude.map { .string($0) }), "quant_algo": "FP8", "kv_cache_scheme": fp8,
                             "producer": ["name": "modelopt", "version": "0.29.0"], "quant_method": "modelopt"]
        XCTAssertEqual(config["quantization_config"], qc)
    }

    /// NVFP4: codes U8 [out, in/2], block scales E4M3 [out, in/16], weight_scale_2 F32 [], and
    /// `group_size: 16` in both JSON files.
    func testLayoutOfTheNvidiaNVFP4Export() throws {
        let out = dir + "/nvfp4"
        try export(moe, recipe(.nvidiaNVFP4), to: out, kv: false)
        let f = try SafetensorsFile(path: out + "/model.safetensors")
        func entry(_ n: String) -> String? { f.info(n).map { "\($0.dtype.rawValue) \($0.shape)" } }
        XCTAssertEqual(entry("backbone.layers.1.mixer.experts.0.down_proj.weight"), "U8 [256, 64]")
        XCTAssertEqual(entry("backbone.layers.1.mixer.experts.0.down_proj.weight_scale"), "F8_E4M3 [256, 8]")
        XCTAssertEqual(entry("backbone.layers.1.mixer.experts.0.down_proj.weight_scale_2"), "F32 []")
        XCTAssertNil(entry("backbone.layers.5.mixer.k_proj.k_scale"), "no KV cache declared")
        let side = try JSONParser.parse(try MappedFile.contents(of: out + "/hf_quant_config.json"))
        XCTAssertEqual(side["quantization"]?["quant_algo"], "NVFP4")
        XCTAssertEqual(side["quantization"]?["group_size"], 16)
        XCTAssertEqual(side["quantization"]?["kv_cache_quant_algo"], .null)
        let config = try JSONParser.parse(try MappedFile.contents(of: out + "/config.json"))
        XCTAssertEqual(config["quantization_config"]?["config_groups"]?["group_0"]?["weights"], ["dynamic": false, "num_bits": 4, "type": "float", "group_size": 16])
        XCTAssertNil(config["quantization_config"]?["kv_cache_scheme"])
    }

    /// Importing an export and exporting it again with the same recipe copies codes, scales and
    /// the static input and KV scales: every file is byte-identical (FP8, NVFP4, mixed).
    func testExportImportExportIsByteIdentical() throws {
        for (i, r) in [recipe(.nvidiaFP8), recipe(.nvidiaNVFP4), mixed].enumerated() {
            let a = dir + "/a\(i)", b = dir + "/b\(i)"
            try export(moe, r, to: a)
            let map = try TensorMap(checkpoint: try Checkpoint(path: a))
            let sink = try HFCheckpointSink(directory: b, layout: ModelOptExport(kvCacheFP8: true))
            _ = try Converter(map: map, recipe: r).convert(into: sink, metadata: ["model": try JSONParser.parse(try MappedFile.contents(of: a + "/config.json"))], blobs: [])
            for file in ["model.safetensors", "config.json", "hf_quant_config.json"] {
                XCTAssertTrue(try MappedFile.contents(of: a + "/" + file) == MappedFile.contents(of: b + "/" + file), "\(r.name): \(file) differs")
            }
        }
    }

    /// Without an input amax (no calibration) a quantized weight is refused, naming it; so is an
    /// FP8 KV cache without the K/V range. Nothing is left behind.
    func testMissingStaticScalesAreRefused() throws {
        let map = try TensorMap(checkpoint: try Checkpoint(path: moe))
        let sink = try HFCheckpointSink(directory: dir + "/x", layout: ModelOptExport(kvCacheFP8: true))
        XCTAssertThrowsError(try Converter(map: map, recipe: recipe(.nvidiaFP8)).convert(into: sink, metadata: [:], blobs: [])) { e in
            XCTAssertTrue("\(e)".contains("backbone.layers.0.mixer.in_proj.input_scale"), "\(e)")
            XCTAssertTrue("\(e)".contains("--calib FILE or --stats FILE"), "\(e)")
        }
        var bf16 = Recipe(name: "kv-only", defaultScheme: .bf16); bf16.kvCacheFP8 = true
        let conv = Converter(map: map, recipe: bf16)
        let sink2 = try HFCheckpointSink(directory: dir + "/y", layout: ModelOptExport(kvCacheFP8: true))
        let k = try XCTUnwrap(try conv.plans().first { $0.0.role == .attnK })
        XCTAssertThrowsError(try conv.writeTensor(k.0, k.1, to: sink2)) { e in
            XCTAssertTrue("\(e)".contains("backbone.layers.5.mixer.k_proj.k_scale"), "\(e)")
        }
        sink2.discard()
        XCTAssertEqual(directoryListing(dir), [])
    }

    /// Scale layouts ModelOpt cannot hold are refused at plan time with the reason: per-SSM-head
    /// (several scales in one in_proj), FP8 per channel, INT4/INT8, an NVFP4 row of partial blocks.
    func testPlansModelOptCannotStoreAreRefused() throws {
        let map = try TensorMap(checkpoint: try Checkpoint(path: moe))
        var perHead = Recipe.builtin(.fp8); perHead.wholeInProj = true
        let v = try Converter(map: map, recipe: perHead).violations(of: HFCheckpointSink(directory: dir + "/z", layout: ModelOptExport()))
        XCTAssertEqual(v.first, "backbone.layers.0.mixer.in_proj.weight: 5 row segments with a scale each (z, x, B, C, dt); ModelOpt stores one weight_scale (FP8) or weight_scale_2 (NVFP4) per tensor — set \"per_head_scales\": false")
        XCTAssertTrue(v.contains { $0.hasPrefix("lm_head.weight: scheme int8 is not one a ModelOpt export stores") }, "\(v)")
        let channel = Converter(map: map, recipe: Recipe(name: "c", defaultScheme: .fp8Channel, perHeadScales: false))
        XCTAssertTrue(try channel.violations(of: HFCheckpointSink(directory: dir + "/z", layout: ModelOptExport())).contains {
            $0.hasPrefix("backbone.layers.0.mixer.out_proj.weight: scheme fp8-channel is not one a ModelOpt export stores") })
        let odd = SinkTensor(name: "w.weight", role: .mlpUp, layer: 0, expert: nil, shape: [4, 24], scheme: "nvfp4",
                             segments: [("", "nvfp4")], sourceDType: .bf16)
        XCTAssertEqual(ModelOptExport().rules.tensorCheck?(odd), ["nvfp4: row width 24 is not whole blocks of 16 (ModelOpt's NVFP4 has no partial block)"])
    }

    /// The presets keep the Mamba layer feeding each attention layer: Nemotron 3 Nano's 4, 11,
    /// 18, 25, 32 and 41 (NVIDIA's published NVFP4 hf_quant_config.json), the fixture's 4 and 11.
    func testMambaLayersFeedingAttention() throws {
        var json = try JSONParser.parse(try MappedFile.contents(of: moe + "/config.json")).objectValue!
        let nano = "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME"
        json["hybrid_override_pattern"] = .string(nano)
        json["num_hidden_layers"] = .int(nano.count)
        XCTAssertEqual(Recipe.mambaLayersFeedingAttention(try ModelConfig(json: .object(json))), [4, 11, 18, 25, 32, 41])
        XCTAssertEqual(Recipe.mambaLayersFeedingAttention(try ModelConfig(contentsOf: moe + "/config.json")), [4, 11])
    }
}
