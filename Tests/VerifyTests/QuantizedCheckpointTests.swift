import XCTest
import Model
import Formats
import Quantize
import Tokenizer
@testable import Verify
import TestSupport

/// Issue 11 §3: checkpoints already quantized in NVIDIA ModelOpt's layout (F8_E4M3 or packed
/// NVFP4 weights with their scales beside them) are read with their scales — before, such a
/// checkpoint was evaluated with the scales ignored (perplexity 3677 instead of 47, exit 0), then
/// refused as "tensors the config does not use".
final class QuantizedCheckpointTests: ScratchDirectoryTestCase {
    let dense = Fixtures.tinyDense
    static let heldout: [Int32] = {
        let tok = try! Tokenizer(contentsOf: Fixtures.tinyDense + "/tokenizer.json")
        let text = String(decoding: try! MappedFile.contents(of: Fixtures.text("kjv-heldout.txt")), as: UTF8.self)
        return try! tok.encode(text, addSpecialTokens: false)
    }()

    static let fp8Config: JSONValue = ["quant_method": "modelopt", "quant_algo": "FP8", "producer": ["name": "modelopt", "version": "0.35.0"]]

    func perplexity(_ weights: WeightProvider) throws -> PerplexityResult {
        try Perplexity.evaluate(model: HybridModel(weights: weights), windows: EvaluationWindows(tokens: Self.heldout, ctx: 256), batchSize: 8)
    }

    /// The regression test: every quantized weight reads back as code × scale (bit for bit what our
    /// fp8-channel codec decodes), and perplexity is reference.json's fp8-channel baseline (47.3),
    /// not the 3677 of codes read without their scales.
    func testModelOptFP8ReadsCodesTimesScales() throws {
        let path = try ModelOptFixture.write(dir: dir, "fp8", from: dense, .fp8Channel, quantConfig: Self.fp8Config)
        let ck = try Checkpoint(path: path)
        XCTAssertEqual(ck.quantization?.summary, "ModelOpt FP8")
        let map = try TensorMap(checkpoint: ck)
        let original = try TensorMap(checkpoint: try Checkpoint(path: dense))
        let weights = CheckpointWeights(map: map)
        var checked = 0
        for t in map.tensors where t.data.encoded != nil {
            let o = original.tensor(t.role, layer: t.layer, expert: t.expert)!
            var want = try o.data.floats()
            FP8Codec(perTensor: false).fakeQuant(&want, cols: t.data.rowWidth, rows: 0..<t.data.rows, rowScale: 1)
            let got = FloatBuffer(count: t.data.elementCount)
            try weights.load(t.role, layer: t.layer, expert: t.expert, into: got.pointer)
            XCTAssertTrue(want.withUnsafeBufferPointer { w in (0..<w.count).allSatisfy { w[$0].bitPattern == got.pointer[$0].bitPattern } }, t.name)
            checked += 1
        }
        XCTAssertEqual(checked, try ModelOptFixture.quantizedNames(dense).count)
        XCTAssertEqual(map.runtimeOnly.count, checked, "every input_scale accepted as runtime-only")
        let r = try perplexity(weights)
        let ref = try XCTUnwrap(try JSONParser.parse(try MappedFile.contents(of: dense + "/reference.json"))["ppl_kjv_heldout"]?["fp8-channel"]?.doubleValue)
        XCTAssertLessThanOrEqual(abs(r.ppl / ref - 1), 0.003, "ppl \(r.ppl), reference fp8-channel \(ref)")
    }

    /// Per-tensor scales declared in hf_quant_config.json only, with FP8 KV-cache scales; convert
    /// to fp8-tensor copies codes and scale unchanged, and to fp8-channel repeats the scale per row.
    func testPerTensorScalesFromSideFileAndLosslessCopy() throws {
        let side: JSONValue = ["producer": ["name": "modelopt", "version": "0.35.0"],
                               "quantization": ["quant_algo": "FP8", "kv_cache_quant_algo": "FP8", "exclude_modules": ["lm_head"]]]
        let config = try ModelConfig(json: try JSONParser.parse(try MappedFile.contents(of: dense + "/config.json")), file: "config.json")
        let attention = try XCTUnwrap(config.layers.firstIndex(of: .attention))
        let kv: [(TensorDeclaration, [UInt8])] = ["k_proj.k_scale", "v_proj.v_scale"].map {
            (TensorDeclaration(name: "backbone.layers.\(attention).mixer.\($0)", dtype: .f32, shape: []), [Float(1.5)].withUnsafeBytes { Array($0) })
        }
        let path = try ModelOptFixture.write(dir: dir, "fp8t", from: dense, .fp8Tensor, quantConfig: nil, side: side, extra: kv)
        let ck = try Checkpoint(path: path)
        XCTAssertEqual(ck.quantization?.summary, "ModelOpt FP8, FP8 KV cache scales")
        XCTAssertTrue(ck.inputFiles.contains(path + "/hf_quant_config.json"), "the side file is an input no output may replace")
        let map = try TensorMap(checkpoint: ck)
        for recipe in ["naive-fp8-tensor", "naive-fp8-channel"] {
            let out = dir + "/\(recipe).nemo"
            let conv = Converter(map: map, recipe: try Recipe.load(Fixtures.root + "/../recipes/\(recipe).json"))
            _ = try conv.convert(to: out, metadata: ["model": try JSONParser.parse(try MappedFile.contents(of: path + "/config.json"))], blobs: [])
            let pack = try PackedFile(path: out)
            var copied = 0
            for (t, plan) in try conv.plans() {
                guard let enc = t.data.encoded as? ModelOptFP8Tensor else { continue }
                let p = try XCTUnwrap(pack.tensor(t.name))
                var codes: [UInt8] = [], scales: [Float] = []
                for seg in plan.segments {
                    codes += try pack.bytes(p.sections[seg.section("codes")]!, owner: "codes")
                    scales += try pack.bytes(p.sections[seg.section("scales")]!, owner: "scales").withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                }
                XCTAssertEqual(codes, Array(enc.codes.bytes), "\(recipe): \(t.name) codes copied")
                XCTAssertEqual(scales, recipe == "naive-fp8-tensor" ? [Float](repeating: enc.rowScales[0], count: plan.segments.count) : enc.rowScales, t.name)
                copied += 1
            }
            XCTAssertGreaterThan(copied, 10)
            // And the pack reads back to the checkpoint's own values.
            let a = PackedWeights.self
            let pw = try a.init(path: out), cw = CheckpointWeights(map: map)
            for t in map.tensors where t.data.encoded != nil {
                let x = FloatBuffer(count: t.data.elementCount), y = FloatBuffer(count: t.data.elementCount)
                try pw.load(t.role, layer: t.layer, expert: t.expert, into: x.pointer)
                try cw.load(t.role, layer: t.layer, expert: t.expert, into: y.pointer)
                XCTAssertEqual(memcmp(x.pointer, y.pointer, t.data.elementCount * 4), 0, t.name)
            }
        }
    }

    /// NVFP4 checkpoints decode as e2m1 × e4m3 block scale × weight_scale_2, bit for bit what our
    /// nvfp4 codec decodes from the same codes.
    func testModelOptNVFP4DecodesLikeOurCodec() throws {
        let path = try ModelOptFixture.write(dir: dir, "nvfp4", from: dense, .nvfp4, quantConfig: ["quant_method": "modelopt", "quant_algo": "NVFP4"])
        let map = try TensorMap(checkpoint: try Checkpoint(path: path))
        let original = try TensorMap(checkpoint: try Checkpoint(path: dense))
        var checked = 0
        for t in map.tensors where t.data.encoded != nil {
            var want = try original.tensor(t.role, layer: t.layer, expert: t.expert)!.data.floats()
            let g = NVFP4Codec.globalScale(absMax: FP8E4M3.absMax(want, count: want.count))
            NVFP4Codec().fakeQuant(&want, cols: t.data.rowWidth, rows: 0..<t.data.rows, rowScale: g)
            let got = try t.data.floats()
            XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), t.name)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 10)
        XCTAssertLessThan(try perplexity(CheckpointWeights(map: map)).ppl, 60)
    }

    /// Layouts that parse but disagree with themselves are errors naming the file and tensor.
    func testInconsistentQuantizedCheckpointsAreRefusedNamingTheTensor() throws {
        let w = "backbone.layers.0.mixer.in_proj.weight"
        func drop(_ name: String) -> (inout [(TensorDeclaration, [UInt8])]) -> Void { { $0.removeAll { $0.0.name == name } } }
        func replace(_ name: String, _ d: TensorDeclaration, _ b: [UInt8]) -> (inout [(TensorDeclaration, [UInt8])]) -> Void {
            { t in let i = t.firstIndex { $0.0.name == name }!; t[i] = (d, b) }
        }
        let v = try Checkpoint(path: dense).view(w)!
        let r = v.shape[0]
        let f32 = { (x: [Float]) in x.withUnsafeBytes { Array($0) } }
        let cases: [(String, JSONValue?, (inout [(TensorDeclaration, [UInt8])]) -> Void, String)] = [
            ("noscale", Self.fp8Config, drop(w + "_scale"), "tensor '\(w)': F8_E4M3 weight without its \(w)_scale"),
            ("shape", Self.fp8Config, replace(w + "_scale", TensorDeclaration(name: w + "_scale", dtype: .f32, shape: [r + 1]), f32(.init(repeating: 1, count: r + 1))),
             "tensor '\(w)_scale': shape [\(r + 1)] fits neither a per-tensor scale"),
            ("nan", Self.fp8Config, replace(w + "_scale", TensorDeclaration(name: w + "_scale", dtype: .f32, shape: [r, 1]), f32([.nan] + .init(repeating: 1, count: r - 1))),
             "tensor '\(w)_scale': scale nan at index 0 is not a positive finite number"),
            ("zero", Self.fp8Config, replace(w + "_scale", TensorDeclaration(name: w + "_scale", dtype: .f32, shape: [r, 1]), f32(.init(repeating: 0, count: r))),
             "tensor '\(w)_scale': scale 0.0 at index 0 is not a positive finite number"),
            ("bf16", Self.fp8Config, replace(w, TensorDeclaration(name: w, dtype: .bf16, shape: v.shape), Array(v.bytes)),
             "tensor '\(w)_scale': a weight_scale beside a BF16 weight (\(w))"),
            ("input", Self.fp8Config, replace("backbone.layers.0.mixer.in_proj.input_scale", TensorDeclaration(name: "backbone.layers.0.mixer.in_proj.input_scale", dtype: .f32, shape: []), f32([-1])),
             "tensor 'backbone.layers.0.mixer.in_proj.input_scale': scale -1.0 is not a positive finite number"),
            ("method", ["quant_method": "gptq", "bits": 4], { _ in }, "quantization_config with quant_method 'gptq' is not a layout nemo-convert reads"),
            ("algo", ["quant_method": "modelopt", "quant_algo": "W4A16_AWQ"], { _ in }, "ModelOpt quant_algo 'W4A16_AWQ' is not read"),
            ("unsaid", nil, { _ in }, "looks like a quantization tensor (a scale or packed codes), but config.json has no quantization_config"),
            ("pqs", Self.fp8Config, { $0.append((TensorDeclaration(name: "backbone.layers.0.mixer.in_proj.pre_quant_scale", dtype: .f32, shape: [4]), f32([1, 1, 1, 1]))) },
             "1 tensor(s) the config does not use, which would be dropped: backbone.layers.0.mixer.in_proj.pre_quant_scale"),
        ]
        for (name, config, mutate, message) in cases {
            let path = try ModelOptFixture.write(dir: dir, name, from: dense, .fp8Channel, quantConfig: config, mutate: mutate)
            XCTAssertThrowsError(try TensorMap(checkpoint: try Checkpoint(path: path)), name) { e in
                XCTAssertTrue("\(e)".contains(message), "\(name): \(e)")
                XCTAssertTrue("\(e)".contains(path), "\(name) names the file: \(e)")
            }
        }
    }
}

import Foundation
