import XCTest
import Calibrate
import Model
import Formats
import Quantize
import Tokenizer
@testable import Verify
import TestSupport

/// Perplexity on fixtures/text/kjv-heldout.txt under reference.json's protocol, for the stored
/// weights and for packed files made with reference.json's naive recipes.
final class ReferencePerplexityTests: XCTestCase {
    static let heldout: [Int32] = {
        let tok = try! Tokenizer(contentsOf: Fixtures.model("nemotron-h-tiny-moe") + "/tokenizer.json")
        let text = String(decoding: try! MappedFile.contents(of: Fixtures.text("kjv-heldout.txt")), as: UTF8.self)
        return try! tok.encode(text, addSpecialTokens: false)
    }()

    func reference(_ model: String, _ key: String) throws -> Double {
        let json = try JSONParser.parse(try MappedFile.contents(of: Fixtures.model(model) + "/reference.json"))
        return try XCTUnwrap(json["ppl_kjv_heldout"]?[key]?.doubleValue)
    }

    func perplexity(_ weights: WeightProvider) throws -> PerplexityResult {
        let w = EvaluationWindows(tokens: Self.heldout, ctx: 256)
        return try Perplexity.evaluate(model: HybridModel(weights: weights), windows: w, batchSize: 8)
    }

    func testStoredWeightsReproduceReferenceBF16() throws {
        for m in Fixtures.models {
            let r = try perplexity(try CheckpointWeights(path: Fixtures.model(m)))
            let want = try reference(m, "bf16")
            XCTAssertEqual(r.tokensScored, 50490)
            XCTAssertEqual(r.windows, 198)
            XCTAssertLessThanOrEqual(abs(r.ppl / want - 1), 0.0005, "\(m): ppl \(r.ppl), reference \(want)")
        }
    }

    /// convert with the naive recipes, then perplexity of the packed file: reference.json's
    /// round-to-nearest baselines within 0.3%.
    func testNaiveRecipesReproduceReferenceBaselines() throws {
        let dir = NSTemporaryDirectory() + "nemo-naive-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases = [("nemotron-h-tiny-moe", "int8-channel"), ("nemotron-h-tiny-moe", "int4-g128"),
                     ("nemotron-h-tiny-dense", "fp8-channel"), ("nemotron-h-tiny-dense", "int4-g32")]
        for (m, key) in cases {
            let recipe = try Recipe.load(Fixtures.root + "/../recipes/naive-\(key).json")
            let map = try TensorMap(checkpoint: try Checkpoint(path: Fixtures.model(m)))
            let out = dir + "/\(m)-\(key).nemo"
            _ = try Converter(map: map, recipe: recipe).convert(to: out, metadata: ["model": try JSONParser.parse(try MappedFile.contents(of: Fixtures.model(m) + "/config.json"))], blobs: [])
            let r = try perplexity(try PackedWeights(path: out))
            let want = try reference(m, key)
            XCTAssertLessThanOrEqual(abs(r.ppl / want - 1), 0.003, "\(m) \(key): ppl \(r.ppl), reference \(want)")
        }
    }
}

import Foundation
