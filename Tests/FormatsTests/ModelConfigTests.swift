import XCTest
@testable import Formats
import TestSupport

final class ModelConfigTests: XCTestCase {
    /// Nemotron-3-Nano-30B-A3B as its hub config.json spells it (docs/nemotron-h.md §1.2).
    private var nano3: JSONObject {
        [
            "model_type": "nemotron_h", "hidden_size": 2688, "vocab_size": 131072, "num_hidden_layers": 52,
            "hybrid_override_pattern": "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME",
            "num_attention_heads": 32, "num_key_value_heads": 2, "head_dim": 128,
            "mamba_num_heads": 64, "mamba_head_dim": 64, "n_groups": 8, "ssm_state_size": 128, "conv_kernel": 4,
            "chunk_size": 128, "intermediate_size": 1856, "n_routed_experts": 128, "num_experts_per_tok": 6,
            "moe_intermediate_size": 1856, "n_shared_experts": 1, "moe_shared_expert_intermediate_size": 3712,
            "routed_scaling_factor": 2.5, "layer_norm_epsilon": 1e-5,
        ]
    }

    private func config(_ edit: (inout JSONObject) -> Void) throws -> ModelConfig {
        var o = nano3
        edit(&o)
        return try ModelConfig(json: .object(o), file: "c.json")
    }

    private func reject(_ message: String, line: UInt = #line, _ edit: (inout JSONObject) -> Void) {
        assertFormatError("c.json: invalid config: " + message, line: line) { _ = try config(edit) }
    }

    // MARK: fixtures

    func testTinyMoEFixtureClassicSpelling() throws {
        let c = try ModelConfig(contentsOf: Fixtures.tinyMoE + "/config.json")
        XCTAssertEqual(c.pattern, "MEMEM*EMEMEM*E")
        XCTAssertEqual(c.hiddenSize, 256)
        XCTAssertEqual(c.vocabSize, 4096)
        XCTAssertEqual(c.normEps, 1e-5)
        XCTAssertEqual(c.count(.mamba), 6)
        XCTAssertEqual(c.count(.moe), 6)
        XCTAssertEqual(c.count(.attention), 2)
        let m = try XCTUnwrap(c.mamba)
        XCTAssertEqual([m.heads, m.headDim, m.groups, m.stateSize, m.convKernel, m.chunkSize], [8, 32, 2, 32, 4, 64])
        XCTAssertEqual(m.timeStepLimit.0, 0.001)
        XCTAssertEqual(m.timeStepLimit.1, .infinity, "bare Infinity literal")
        XCTAssertTrue(m.convBias)
        XCTAssertEqual(m.innerSize, 256)
        XCTAssertEqual(m.inProjRows, 2 * 256 + 2 * 2 * 32 + 8)
        XCTAssertEqual(m.inProjRows, 648)
        XCTAssertEqual(m.convDim, 256 + 2 * 2 * 32)
        XCTAssertEqual(m.convDim, 384)
        XCTAssertEqual(c.attention, AttentionDims(heads: 8, kvHeads: 2, headDim: 32, bias: false))
        let e = try XCTUnwrap(c.moe)
        XCTAssertEqual([e.experts, e.topK, e.intermediateSize, e.sharedExperts, e.sharedIntermediateSize], [16, 4, 128, 1, 256])
        XCTAssertEqual(e.routedScalingFactor, 2.5)
        XCTAssertNil(e.latentSize)
        XCTAssertNil(c.mlp, "intermediate_size is present but no '-' layer uses it")
        XCTAssertEqual(c.bosTokenId, 1)
        XCTAssertEqual(c.eosTokenId, 2)
    }

    func testTinyDenseFixtureTransformers5Spelling() throws {
        let c = try ModelConfig(contentsOf: Fixtures.tinyDense + "/config.json")
        XCTAssertEqual(c.pattern, "M-M-M*-M-M-M*-", "linear_attention/full_attention/mlp")
        XCTAssertEqual(c.mamba?.timeStepLimit.1, .infinity, "{\"__float__\": \"Infinity\"}")
        XCTAssertEqual(c.mamba?.timeStepLimit.0, 0.001)
        XCTAssertEqual(c.mlp, MLPDims(intermediateSize: 768, bias: false))
        XCTAssertNil(c.moe, "MoE fields are present but no 'E' layer uses them")
        XCTAssertEqual(c.mamba?.inProjRows, 648)
        XCTAssertEqual(c.mamba?.convDim, 384)
    }

    func testNano3DerivedSizes() throws {
        let c = try config { _ in }
        let m = try XCTUnwrap(c.mamba)
        XCTAssertEqual(m.innerSize, 4096)
        XCTAssertEqual(m.inProjRows, 10304)
        XCTAssertEqual(m.convDim, 6144)
        XCTAssertEqual(m.normGroupSize, 512)
        XCTAssertEqual(m.headsPerGroup, 8)
        XCTAssertEqual(m.inProjSegments.map(\.range), [0..<4096, 4096..<8192, 8192..<9216, 9216..<10240, 10240..<10304])
        XCTAssertEqual([c.count(.mamba), c.count(.attention), c.count(.mlp), c.count(.moe)], [23, 6, 0, 23])
        XCTAssertEqual(c.attention?.qRows, 4096)
        XCTAssertEqual(c.attention?.kvRows, 256)
        XCTAssertEqual(m.timeStepLimit.0, 0, "absent time_step_limit means no clamp")
        XCTAssertEqual(m.timeStepLimit.1, .infinity)
        XCTAssertEqual(c.normEps, 1e-5)
    }

    // MARK: every spelling

    func testLayersBlockTypeClassicNames() throws {
        let c = try config {
            $0["hybrid_override_pattern"] = nil
            $0["num_hidden_layers"] = 4
            $0["intermediate_size"] = 512
            $0["layers_block_type"] = ["mamba", "attention", "mlp", "moe"]
        }
        XCTAssertEqual(c.pattern, "M*-E")
        XCTAssertEqual(c.layers, [.mamba, .attention, .mlp, .moe])
        XCTAssertEqual(c.mlp?.intermediateSize, 512)
    }

    func testLayersBlockTypeTransformers5Names() throws {
        let c = try config {
            $0["hybrid_override_pattern"] = nil
            $0["num_hidden_layers"] = nil
            $0["layers_block_type"] = ["linear_attention", "full_attention", "moe", "mlp"]
        }
        XCTAssertEqual(c.pattern, "M*E-")
    }

    func testLegacyMambaNames() throws {
        let c = try config {
            for k in ["n_groups", "conv_kernel", "chunk_size"] { $0[k] = nil }
            $0["mamba_n_groups"] = 4
            $0["mamba_d_conv"] = 3
            $0["mamba_chunk_size"] = 256
            $0["mamba_dt_limit"] = [0.01, 10]
            $0["mamba_conv_bias"] = false
        }
        let m = try XCTUnwrap(c.mamba)
        XCTAssertEqual(m.groups, 4)
        XCTAssertEqual(m.convKernel, 3)
        XCTAssertEqual(m.chunkSize, 256)
        XCTAssertEqual(m.timeStepLimit.0, 0.01)
        XCTAssertEqual(m.timeStepLimit.1, 10)
        XCTAssertFalse(m.convBias)
        XCTAssertEqual(m.inProjRows, 2 * 4096 + 2 * 4 * 128 + 64)
    }

    func testAttentionHeadDimAndRmsNormEps() throws {
        let c = try config {
            $0["head_dim"] = nil
            $0["attention_head_dim"] = 64
            $0["layer_norm_epsilon"] = nil
            $0["rms_norm_eps"] = 1e-6
        }
        XCTAssertEqual(c.attention?.headDim, 64)
        XCTAssertEqual(c.normEps, 1e-6)
        let n = try config { $0["layer_norm_epsilon"] = nil; $0["norm_eps"] = 2e-5 }
        XCTAssertEqual(n.normEps, 2e-5)
        let fallback = try config { $0["head_dim"] = nil }
        XCTAssertEqual(fallback.attention?.headDim, 2688 / 32, "hidden / heads when no head_dim is given")
    }

    func testNonFiniteLiteralsParse() throws {
        var text = JSONWriter.string(.object(nano3), options: .init(pretty: true))
        text.removeLast()   // closing brace
        text += #", "time_step_limit": [-Infinity, Infinity], "time_step_min": NaN, "time_step_max": {"__float__": "-Infinity"}}"#
        let c = try ModelConfig(json: JSONParser.parse(text))
        XCTAssertEqual(c.mamba?.timeStepLimit.0, -.infinity)
        XCTAssertEqual(c.mamba?.timeStepLimit.1, .infinity)
        let f = try config { $0["time_step_limit"] = [0.0, ["__float__": "Infinity"]] }
        XCTAssertEqual(f.mamba?.timeStepLimit.1, .infinity)
        let null = try config { $0["time_step_limit"] = .null }
        XCTAssertEqual(null.mamba?.timeStepLimit.1, .infinity)
    }

    // MARK: rejections

    func testRejectsHeadsThatDoNotDivide() {
        reject("mamba_num_heads 64 is not divisible by n_groups 6") { $0["n_groups"] = 6 }
        reject("num_attention_heads 32 is not divisible by num_key_value_heads 3") { $0["num_key_value_heads"] = 3 }
        reject("no head_dim given and hidden_size 2688 is not divisible by num_attention_heads 30") {
            $0["head_dim"] = nil; $0["num_attention_heads"] = 30; $0["num_key_value_heads"] = 2
        }
    }

    func testRejectsUnknownPatternLetters() {
        reject("hybrid_override_pattern has unknown letter 'X' at layer 2 (expected M, *, - or E)") {
            $0["hybrid_override_pattern"] = "MEX"; $0["num_hidden_layers"] = 3
        }
        reject("layers_block_type[1] is \"ssm\", expected one of mamba, attention, mlp, moe, linear_attention, full_attention") {
            $0["hybrid_override_pattern"] = nil; $0["num_hidden_layers"] = nil; $0["layers_block_type"] = ["mamba", "ssm"]
        }
    }

    func testRejectsTooManyExpertsPerToken() {
        reject("num_experts_per_tok 129 exceeds n_routed_experts 128") { $0["num_experts_per_tok"] = 129 }
    }

    func testRejectsMissingPattern() {
        reject("no layer pattern: neither 'hybrid_override_pattern' nor 'layers_block_type' is present") {
            $0["hybrid_override_pattern"] = nil
        }
        reject("the layer pattern is empty") { $0["hybrid_override_pattern"] = ""; $0["num_hidden_layers"] = nil }
    }

    func testRejectsLayerCountMismatch() {
        reject("num_hidden_layers is 50 but the layer pattern has 52 layers") { $0["num_hidden_layers"] = 50 }
    }

    func testRejectsMissingAndMistypedFields() {
        reject("missing required field 'hidden_size'") { $0["hidden_size"] = nil }
        reject("'hidden_size' must be an integer, got \"big\"") { $0["hidden_size"] = "big" }
        reject("'mamba_num_heads' must be positive, got 0") { $0["mamba_num_heads"] = 0 }
        reject("time_step_limit must be a pair [min, max] of numbers, got [1]") {
            $0["time_step_limit"] = [1]
        }
    }

    /// Issue 10 §5: values that make every forward pass NaN, infinite or meaningless.
    func testRejectsValuesThatBreakTheForwardPass() {
        reject("layer_norm_epsilon must be a positive finite number, got 0.0") { $0["layer_norm_epsilon"] = 0 }
        reject("layer_norm_epsilon must be a positive finite number, got -1e-05") { $0["layer_norm_epsilon"] = -1e-5 }
        reject("layer_norm_epsilon must be a positive finite number, got nan") { $0["layer_norm_epsilon"] = ["__float__": "NaN"] }
        reject("layer_norm_epsilon must be a positive finite number, got 1e-50") { $0["layer_norm_epsilon"] = 1e-50 }
        reject("routed_scaling_factor must be a positive finite number, got inf") {
            $0["routed_scaling_factor"] = ["__float__": "Infinity"]
        }
        reject("routed_scaling_factor must be a positive finite number, got nan") { $0["routed_scaling_factor"] = ["__float__": "NaN"] }
        for bad: JSONValue in [[0.1, 0.01], [["__float__": "Infinity"], ["__float__": "Infinity"]],
                               [0.0, ["__float__": "NaN"]], [["__float__": "-Infinity"], ["__float__": "-Infinity"]], [0.0, 0.0]] {
            reject("time_step_limit must be [min, max] with min ≤ max, min < ∞ and max > 0, got \(bad)") { $0["time_step_limit"] = bad }
        }
    }

    func testRejectsBadJSON() throws {
        let dir = temporaryDirectory(self)
        writeFile(dir + "/config.json", Array(#"{"hidden_size": 2688,}"#.utf8))
        assertFormatError("\(dir)/config.json: invalid config: not valid JSON: expected a string key at byte 21") {
            _ = try ModelConfig(contentsOf: dir + "/config.json")
        }
        writeFile(dir + "/config.json", Array("[]".utf8))
        assertFormatError("\(dir)/config.json: invalid config: top level is not a JSON object") {
            _ = try ModelConfig(contentsOf: dir + "/config.json")
        }
    }
}
