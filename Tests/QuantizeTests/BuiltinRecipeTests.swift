import XCTest
import Formats
@testable import Quantize
import TestSupport

/// The built-in recipes' choices that README's accuracy table depends on, on the tiny MoE fixture.
final class BuiltinRecipeTests: XCTestCase {
    static let map: TensorMap = {
        var u = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { u.deleteLastPathComponent() }
        return try! TensorMap(checkpoint: try! Checkpoint(path: u.path + "/fixtures/nemotron-h-tiny-moe"))
    }()

    func plans(_ b: Recipe.Builtin) throws -> [String: TensorPlan] {
        var out: [String: TensorPlan] = [:]
        for (t, p) in try Converter(map: Self.map, recipe: .builtin(b)).plans() { out[t.name] = p }
        return out
    }

    /// int8 is reference.json's int8-channel layout: lm_head kept, in_proj INT8 through its dt rows.
    func testInt8KeepsLMHeadAndQuantizesDtRows() throws {
        let p = try plans(.int8)
        XCTAssertEqual(p["lm_head.weight"]?.summary, "bf16")
        XCTAssertEqual(p["backbone.layers.0.mixer.in_proj.weight"]?.summary, "int8")
        XCTAssertEqual(p["backbone.embeddings.weight"]?.summary, "bf16")
        XCTAssertEqual(p["backbone.layers.1.mixer.gate.weight"]?.summary, "f32")
        XCTAssertEqual(p["backbone.layers.0.mixer.conv1d.weight"]?.summary, "bf16")
    }

    /// fp8 keeps one fp8-tensor scale per SSM head (z, x) and per B/C group, dt rows BF16, lm_head INT8.
    func testFP8ScalesFollowHeads() throws {
        let p = try plans(.fp8)
        let segs = try XCTUnwrap(p["backbone.layers.0.mixer.in_proj.weight"]).segments
        XCTAssertEqual(segs.map(\.scheme), [.fp8Tensor, .fp8Tensor, .fp8Tensor, .fp8Tensor, .bf16])
        XCTAssertEqual(segs.map(\.blockRows), [32, 32, 32, 32, nil])
        XCTAssertEqual(p["lm_head.weight"]?.summary, "int8")
        XCTAssertEqual(p["backbone.layers.1.mixer.experts.3.up_proj.weight"]?.summary, "fp8-tensor")
    }
}

import Foundation
