import XCTest
@testable import Formats
import TestSupport

final class ModelStatsTests: XCTestCase {
    func testTinyMoEParametersMatchTransformers() throws {
        let ck = try Checkpoint(path: Fixtures.tinyMoE)
        let s = ModelStats(checkpoint: ck, map: try TensorMap(checkpoint: ck))
        // transformers' sum(p.numel() for p in model.parameters()); the six 16-wide router
        // correction biases are buffers.
        XCTAssertEqual(s.parameters, 10_932_880)
        XCTAssertEqual(s.bufferElements, 96)
        // Routed experts: 6 layers × 16 × (128×256 up + 256×128 down); a token uses 4 per layer.
        XCTAssertEqual(s.activeParameters, 10_932_880 - 6 * 16 * 65_536 + 6 * 4 * 65_536)
        XCTAssertEqual(s.bytesByDType, [.bf16: (10_932_976 - 96) * 2, .f32: 96 * 4])
        let f = try SafetensorsFile(path: Fixtures.tinyMoE + "/model.safetensors")
        XCTAssertEqual(s.totalBytes, f.file.count - f.dataOffset)
        XCTAssertEqual(s.dtypesBySize.map(\.dtype), [.bf16, .f32])
    }

    func testDenseModelIsAllActive() throws {
        let ck = try Checkpoint(path: Fixtures.tinyDense)
        let s = ModelStats(checkpoint: ck, map: try TensorMap(checkpoint: ck))
        XCTAssertEqual(s.parameters, 6_189_712)
        XCTAssertEqual(s.activeParameters, s.parameters)
        XCTAssertEqual(s.bufferElements, 0)
        XCTAssertEqual(s.bytesByDType, [.bf16: 6_189_712 * 2])
    }

    func testReportJSONHasTheDocumentedFields() throws {
        let ck = try Checkpoint(path: Fixtures.tinyMoE)
        let r = ModelReport(checkpoint: ck, map: try TensorMap(checkpoint: ck))
        let text = JSONWriter.string(r.json, pretty: true)
        let j = try JSONParser.parse(text)
        XCTAssertEqual(j["model_type"], "nemotron_h")
        XCTAssertEqual(j["pattern"], "MEMEM*EMEMEM*E")
        XCTAssertEqual(j["num_layers"], 14)
        XCTAssertEqual(j["parameters"], 10_932_880)
        XCTAssertEqual(j["active_parameters"], 6_214_288)
        XCTAssertEqual(j["bytes"], ["BF16": 21_865_760, "F32": 384])
        XCTAssertEqual(j["layer_counts"], ["mamba": 6, "attention": 2, "moe": 6])
        XCTAssertEqual(j["mamba"]?["in_proj_rows"], 648)
        XCTAssertEqual(j["mamba"]?["time_step_limit"], [0.001, .null], "an unbounded limit is null in JSON")
        let tensors = try XCTUnwrap(j["tensors"]?.arrayValue)
        XCTAssertEqual(tensors.count, 289)
        XCTAssertEqual(tensors[0], ["name": "backbone.embeddings.weight", "dtype": "BF16", "shape": [4096, 256], "role": "embedding"])
        XCTAssertEqual(tensors[12], ["name": "backbone.layers.1.mixer.gate.e_score_correction_bias", "dtype": "F32", "shape": [16],
                                     "role": "router_bias", "layer": 1])
        XCTAssertEqual(tensors.last?["role"], "lm_head")
        for t in tensors {
            for k in ["name", "dtype", "shape", "role"] { XCTAssertNotNil(t[k], k) }
        }
    }

    func testReportRowsForUnboundTensors() throws {
        let dir = temporaryDirectory(self)
        _ = try copyFixture(Fixtures.tinyDense, to: dir, extra: [
            Tensor("mtp.layers.0.enorm.weight", .bf16, [2], [0, 0, 0, 0]),
            Tensor("extra.scale", .f32, [1], [0, 0, 0, 0]),
        ])
        let ck = try Checkpoint(path: dir)
        let r = ModelReport(checkpoint: ck, map: try TensorMap(checkpoint: ck, allowUnexpected: true))
        XCTAssertEqual(r.rows.suffix(2).map(\.name), ["extra.scale", "mtp.layers.0.enorm.weight"])
        XCTAssertEqual(r.rows.suffix(2).map(\.note), ["unexpected", "skipped"])
        XCTAssertEqual(r.stats.parameters, 6_189_712, "unbound tensors are not parameters")
        XCTAssertEqual(r.stats.bytesByDType[.f32], 4, "but their bytes are stored")
        XCTAssertEqual(r.stats.bytesByDType[.bf16], 6_189_712 * 2 + 4)
    }
}
