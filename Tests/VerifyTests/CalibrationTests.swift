import XCTest
import Calibrate
import Model
import Formats
import Quantize
import Tokenizer
@testable import Verify
import TestSupport

/// Calibrated conversion end to end on the fixtures (issue 5 §6), the statistics file, and the
/// every-expert guarantee.
final class CalibrationTests: ScratchDirectoryTestCase {
    static func tokens(_ file: String) -> [Int32] {
        let tok = try! Tokenizer(contentsOf: Fixtures.model("nemotron-h-tiny-moe") + "/tokenizer.json")
        return try! tok.encode(String(decoding: try! MappedFile.contents(of: Fixtures.text(file)), as: UTF8.self), addSpecialTokens: false)
    }
    static let calib = tokens("kjv-calib.txt")
    static let heldout = tokens("kjv-heldout.txt")

    func reference(_ model: String, _ key: String) throws -> Double {
        let json = try JSONParser.parse(try MappedFile.contents(of: Fixtures.model(model) + "/reference.json"))
        return try XCTUnwrap(json["ppl_kjv_heldout"]?[key]?.doubleValue)
    }

    func calibrate(_ model: String, recipe: String, method: CalibrationMethod, windows: Int = 128, skip: Int = 0, sequential: Bool = true,
                   checkpoint: String? = nil, saveStats: String? = nil, out name: String) throws -> (String, CalibrationReport) {
        let ck = try Checkpoint(path: checkpoint ?? Fixtures.model(model))
        let map = try TensorMap(checkpoint: ck)
        var o = CalibrationOptions()
        o.method = method
        o.sequential = sequential
        let w = EvaluationWindows(tokens: Array(Self.calib[(skip * 256)...]), ctx: 256, maxWindows: windows)
        let out = dir + "/" + name
        let (_, rep) = try CalibratedConverter(map: map, recipe: try Recipe.load(recipe), options: o)
            .convert(to: out, source: .text(tokens: w.tokens(0..<w.count), windows: w.count, ctx: 256),
                     metadata: ["model": try JSONParser.parse(ck.configBytes)], blobs: [], saveStats: saveStats)
        return (out, rep)
    }

    func heldoutPerplexity(_ path: String) throws -> Double {
        try Perplexity.evaluate(model: HybridModel(weights: try PackedWeights(path: path)),
                                windows: EvaluationWindows(tokens: Self.heldout, ctx: 256), batchSize: 8).ppl
    }

    /// GPTQ-calibrated int4 (groups of 128) closes at least half of the gap between reference.json's
    /// bf16 and naive int4-g128 perplexities, on both fixtures.
    func testCalibratedInt4ClosesHalfTheGapToBF16() throws {
        for m in Fixtures.models {
            let (out, rep) = try calibrate(m, recipe: "int4", method: .gptq, out: "\(m)-int4.nemo")
            XCTAssertEqual(rep.windows, Self.calib.count / 256)
            let ppl = try heldoutPerplexity(out)
            let bf16 = try reference(m, "bf16"), naive = try reference(m, "int4-g128")
            let closed = (naive - ppl) / (naive - bf16)
            XCTAssertGreaterThanOrEqual(closed, 0.5, "\(m): calibrated int4 \(ppl), bf16 \(bf16), naive int4-g128 \(naive)")
        }
    }

    /// Calibrated int8 and fp8 stay within 0.1 % of bf16 on both fixtures.
    func testCalibratedInt8AndFP8StayWithinATenthOfAPercent() throws {
        for m in Fixtures.models {
            let bf16 = try reference(m, "bf16")
            for r in ["int8", "fp8"] {
                let (out, _) = try calibrate(m, recipe: r, method: .gptq, out: "\(m)-\(r).nemo")
                let ppl = try heldoutPerplexity(out)
                XCTAssertLessThanOrEqual(ppl / bf16 - 1, 0.001, "\(m) \(r): \(ppl) vs bf16 \(bf16)")
            }
        }
    }

    /// Statistics saved by one run and loaded by another give the same file as calibrating directly.
    func testStatisticsFileReproducesTheConversion() throws {
        let m = "nemotron-h-tiny-moe", stats = dir + "/moe.stats.safetensors"
        let (direct, _) = try calibrate(m, recipe: "int4", method: .mse, windows: 6, sequential: false, saveStats: stats, out: "direct.nemo")
        let ck = try Checkpoint(path: Fixtures.model(m))
        let map = try TensorMap(checkpoint: ck)
        var o = CalibrationOptions()
        o.method = .mse
        let loaded = try StatsFile.load(stats, config: map.config)
        XCTAssertEqual(loaded.tokens, 6 * 256)
        XCTAssertEqual(loaded[StatsKey(.mambaInProj, layer: 0)]?.rows, 6 * 256)
        let again = dir + "/again.nemo"
        _ = try CalibratedConverter(map: map, recipe: try Recipe.load("int4"), options: o)
            .convert(to: again, source: .statistics(loaded, path: stats), metadata: ["model": try JSONParser.parse(ck.configBytes)], blobs: [])
        let a = try PackedFile(path: direct), b = try PackedFile(path: again)
        XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name))
        for (x, y) in zip(a.tensors, b.tensors) {
            XCTAssertEqual(x.sections.mapValues(\.xxh64), y.sections.mapValues(\.xxh64), x.name)
        }
    }

    /// Two runs' statistics merge into those of one run over both (sums, counts, Gram matrices).
    func testStatisticsMergeAcrossRuns() throws {
        let m = "nemotron-h-tiny-moe"
        let s1 = dir + "/a.stats", s2 = dir + "/b.stats", s12 = dir + "/ab.stats"
        _ = try calibrate(m, recipe: "int4", method: .gptq, windows: 2, skip: 0, sequential: false, saveStats: s1, out: "a.nemo")
        _ = try calibrate(m, recipe: "int4", method: .gptq, windows: 2, skip: 2, sequential: false, saveStats: s2, out: "b.nemo")
        _ = try calibrate(m, recipe: "int4", method: .gptq, windows: 4, skip: 0, sequential: false, saveStats: s12, out: "ab.nemo")
        let cfg = try ModelConfig(contentsOf: Fixtures.model(m) + "/config.json")
        let merged = try StatsFile.load(s1, config: cfg)
        try merged.merge(try StatsFile.load(s2, config: cfg), file: s2)
        let whole = try StatsFile.load(s12, config: cfg)
        XCTAssertEqual(merged.tokens, whole.tokens)
        XCTAssertEqual(merged.routingCounts, whole.routingCounts)
        XCTAssertEqual(Set(merged.linears.keys), Set(whole.linears.keys))
        for (k, w) in whole.linears {
            let s = try XCTUnwrap(merged[k])
            XCTAssertEqual(s.rows, w.rows, k.name)
            for j in 0..<w.width { XCTAssertEqual(s.sumSquares[j], w.sumSquares[j], accuracy: 1e-4 * max(1, w.sumSquares[j]), k.name) }
            // Batches of different sizes take different sgemm blockings: activations agree to rounding.
            for j in 0..<w.width { XCTAssertEqual(s.absMax[j], w.absMax[j], accuracy: 1e-5 * max(1, w.absMax[j]), k.name) }
            let g1 = try XCTUnwrap(s.gram), g2 = try XCTUnwrap(w.gram)
            let scale = g2.map(abs).max() ?? 1
            XCTAssertLessThanOrEqual(zip(g1, g2).map { abs($0 - $1) }.max() ?? 0, 1e-4 * scale, k.name)
        }
    }

    /// An expert the router never picks still gets data (every token is fed to it) and finite,
    /// non-zero scales; the report names it.
    func testExpertWithoutRealTokensIsCalibratedAndReported() throws {
        let src = try Checkpoint(path: Fixtures.model("nemotron-h-tiny-moe"))
        let copy = dir + "/dead-expert"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        for f in ["config.json", "tokenizer.json"] {
            try FileManager.default.copyItem(atPath: Fixtures.model("nemotron-h-tiny-moe") + "/" + f, toPath: copy + "/" + f)
        }
        let st = try SafetensorsFile(path: Fixtures.model("nemotron-h-tiny-moe") + "/model.safetensors")
        var tensors: [(TensorDeclaration, [UInt8])] = []
        for t in st.tensors {
            var bytes = Array(st.view(t.name)!.bytes)
            if t.name.hasSuffix("layers.1.mixer.gate.e_score_correction_bias") {
                XCTAssertEqual(t.dtype, .f32)
                withUnsafeBytes(of: Float(-1e4)) { for i in 0..<4 { bytes[5 * 4 + i] = $0[i] } }
            }
            tensors.append((TensorDeclaration(name: t.name, dtype: t.dtype, shape: t.shape), bytes))
        }
        try SafetensorsWriter.write(to: copy + "/model.safetensors", tensors: tensors)
        _ = src
        let (out, rep) = try calibrate("nemotron-h-tiny-moe", recipe: "int4", method: .gptq, windows: 4, checkpoint: copy, out: "dead.nemo")
        XCTAssertTrue(rep.rareExperts.contains { $0.layer == 1 && $0.expert == 5 && $0.tokens == 0 }, "\(rep.rareExperts)")
        let pf = try PackedFile(path: out)
        for part in ["up_proj", "down_proj"] {
            let t = try XCTUnwrap(pf.tensor("backbone.layers.1.mixer.experts.5.\(part).weight"))
            XCTAssertGreaterThan(t.attributes["calibration_rows"]?.intValue ?? 0, 0)
            let scales = try pf.bytes(try XCTUnwrap(t.sections["scales"]), owner: t.name)
            let values = scales.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            XCTAssertFalse(values.isEmpty)
            XCTAssertTrue(values.allSatisfy { $0.isFinite && $0 > 0 }, part)
        }
        XCTAssertTrue(try heldoutPerplexity(out).isFinite)
    }
}
