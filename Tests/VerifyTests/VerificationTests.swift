import XCTest
import Foundation
import Calibrate
import Model
import Formats
import Quantize
import Tokenizer
@testable import Verify
import TestSupport

/// verify on the fixture models: identical models, perturbations whose effect is known, and
/// agreement with `Perplexity.evaluate`. Two windows of 256 tokens keep each run well under a
/// second in release.
final class VerificationTests: XCTestCase {
    static let heldout: [Int32] = {
        let tok = try! Tokenizer(contentsOf: Fixtures.model("nemotron-h-tiny-moe") + "/tokenizer.json")
        let text = String(decoding: try! MappedFile.contents(of: Fixtures.text("kjv-heldout.txt")), as: UTF8.self)
        return try! tok.encode(text, addSpecialTokens: false)
    }()
    static let windows = EvaluationWindows(tokens: heldout, ctx: 256, maxWindows: 2)

    func verify(_ a: WeightProvider, _ b: WeightProvider, batch: Int = 2) throws -> VerifyReport {
        try Verification.run(original: HybridModel(weights: a), quantized: HybridModel(weights: b), windows: Self.windows, batchSize: batch)
    }

    func testIdenticalModelsAgreeExactly() throws {
        let m = Fixtures.model("nemotron-h-tiny-moe")
        let r = try verify(try CheckpointWeights(path: m), try CheckpointWeights(path: m))
        XCTAssertEqual(r.kld.mean, 0)
        XCTAssertEqual(r.kld.max, 0)
        XCTAssertEqual(r.top1Agreement, 1.0)
        XCTAssertEqual(r.pplRatio, 1.0)
        XCTAssertEqual(r.tokensScored, 2 * 255)
        XCTAssertEqual(r.layers.count, 14)
        XCTAssertEqual(r.layers.map(\.kind.rawValue).joined(), "MEMEM*EMEMEM*E")
        for l in r.layers {
            XCTAssertEqual(l.relError, 0, "layer \(l.index)")
            if l.kind == .moe {
                XCTAssertEqual(l.routingAgreement, 1.0)
                XCTAssertEqual(l.experts.count, 16)
                // Every token goes to top-k = 4 experts, and each expert is measured on at most
                // the probe's budget of its tokens.
                XCTAssertEqual(l.experts.reduce(0) { $0 + $1.tokens }, 2 * 256 * 4)
                for e in l.experts {
                    XCTAssertEqual(e.measuredTokens, min(e.tokens, 512))
                    if e.tokens > 0 { XCTAssertEqual(e.relError, 0) }
                }
            } else {
                XCTAssertNil(l.routingAgreement)
                XCTAssertTrue(l.experts.isEmpty)
            }
        }
    }

    /// A quantized model whose lm_head is all zeros predicts the uniform distribution over the
    /// 4096-token vocabulary at every position, so by hand: nll = ln 4096 = 8.317766166719343 per
    /// token, ppl = 4096 exactly; KL(P‖U) = ln 4096 − H(P) lies in [0, ln 4096]; the residual stream
    /// is untouched (error 0 after every layer); and the quantized top-1 is always token 0
    /// (<unk>, the lowest index of an all-zero row), which the original never predicts here.
    func testZeroHeadGivesTheUniformDistribution() throws {
        let m = Fixtures.model("nemotron-h-tiny-dense")
        let zeroHead = try CheckpointWeights(path: m) { t, values in
            if t.role == .lmHead { values.update(repeating: 0, count: t.data.elementCount) }
        }
        let r = try verify(try CheckpointWeights(path: m), zeroHead)
        XCTAssertEqual(r.quantized.nllMean, log(4096.0), accuracy: 1e-6)
        XCTAssertEqual(r.quantized.ppl, 4096, accuracy: 4096 * 1e-6)
        XCTAssertEqual(r.pplRatio, 4096 / r.original.ppl, accuracy: 1e-6 * r.pplRatio)
        XCTAssertEqual(r.top1Agreement, 0)
        XCTAssertGreaterThan(r.kld.mean, 0)
        XCTAssertLessThanOrEqual(r.kld.max, log(4096.0) + 1e-6)
        for l in r.layers { XCTAssertEqual(l.relError, 0) }
    }

    /// Dense fixture, quantized = original with (a) layer 13's MLP down_proj zeroed, so its block
    /// adds nothing and the residual after layer 13 is the original's after layer 12, and (b) the
    /// final norm weight doubled, so every logit is doubled. Expected values, computed from the
    /// original's own forward pass without the verify code:
    /// - rel error 0 after layers 0–12, and ‖x₁₂ − x₁₃‖ / ‖x₁₃‖ after layer 13;
    /// - KL, ppl and top-1 from the two models' logits with the textbook formulas in Double.
    func testKnownPerturbation() throws {
        let m = Fixtures.model("nemotron-h-tiny-dense")
        let original = HybridModel(weights: try CheckpointWeights(path: m))
        let perturbed = HybridModel(weights: try CheckpointWeights(path: m) { t, values in
            if t.role == .mlpDown && t.layer == 13 { values.update(repeating: 0, count: t.data.elementCount) }
            if t.role == .finalNorm { for i in 0..<t.data.elementCount { values[i] *= 2 } }
        })
        XCTAssertEqual(original.config.layers[13], .mlp)

        // The original's residual before and after block 13, and both models' logits.
        final class LastBlock: ForwardObserver {
            var before: [Float] = [], d2 = 0.0, r2 = 0.0
            func blockOutput(layer: Int, hidden: UnsafePointer<Float>, rows: Int, width: Int) {
                if layer == 12 { before = Array(UnsafeBufferPointer(start: hidden, count: rows * width)) }
                if layer == 13 {
                    for i in 0..<(rows * width) {
                        let d = Double(before[i]) - Double(hidden[i])
                        d2 += d * d; r2 += Double(hidden[i]) * Double(hidden[i])
                    }
                }
            }
        }
        let obs = LastBlock()
        let V = original.config.vocabSize, T = Self.windows.ctx
        var lo: [[Float]] = [], lq: [[Float]] = []
        try Perplexity.forEachWindowLogits(model: original, windows: Self.windows, batchSize: 2, observer: obs) { _, p in
            lo.append(Array(UnsafeBufferPointer(start: p, count: T * V)))
        }
        try Perplexity.forEachWindowLogits(model: perturbed, windows: Self.windows, batchSize: 2) { _, p in
            lq.append(Array(UnsafeBufferPointer(start: p, count: T * V)))
        }
        var kls: [Double] = [], same = 0, nllQ = 0.0
        for w in 0..<Self.windows.count {
            for t in 0..<(T - 1) {
                let a = lo[w][(t * V)..<((t + 1) * V)].map(Double.init), b = lq[w][(t * V)..<((t + 1) * V)].map(Double.init)
                func logSoftmax(_ x: [Double]) -> [Double] {
                    let mx = x.max()!
                    let lse = mx + log(x.reduce(0) { $0 + exp($1 - mx) })
                    return x.map { $0 - lse }
                }
                let la = logSoftmax(a), lb = logSoftmax(b)
                var k = 0.0
                for i in 0..<V { k += exp(la[i]) * (la[i] - lb[i]) }
                kls.append(k)
                if a.firstIndex(of: a.max()!) == b.firstIndex(of: b.max()!) { same += 1 }
                nllQ -= lb[Int(Self.windows.tokens[w * T + t + 1])]
            }
        }
        let expected = ValueSummary(kls)

        let r = try Verification.run(original: original, quantized: perturbed, windows: Self.windows, batchSize: 2)
        for l in r.layers.prefix(13) { XCTAssertEqual(l.relError, 0, "layer \(l.index)") }
        XCTAssertEqual(r.layers[13].relError, (obs.d2 / obs.r2).squareRoot(), accuracy: 1e-6)
        XCTAssertGreaterThan(r.layers[13].relError, 0.01)
        XCTAssertEqual(r.kld.mean, expected.mean, accuracy: 1e-5 * expected.mean)
        XCTAssertEqual(r.kld.median, expected.median, accuracy: 1e-4 * expected.median)
        XCTAssertEqual(r.kld.p99, expected.p99, accuracy: 1e-4 * expected.p99)
        XCTAssertEqual(r.kld.max, expected.max, accuracy: 1e-4 * expected.max)
        XCTAssertEqual(r.top1Agreement, Double(same) / Double(r.tokensScored))
        XCTAssertEqual(r.quantized.nllMean, nllQ / Double(r.tokensScored), accuracy: 1e-5)
    }

    /// Each model's perplexity in verify is the one `Perplexity.evaluate` (the perplexity
    /// command) gives it: same windows, same batches, bit for bit.
    func testPerplexityMatchesThePerplexityCommand() throws {
        let m = Fixtures.model("nemotron-h-tiny-moe")
        let dir = NSTemporaryDirectory() + "nemo-verify-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let packed = dir + "/int4.nemo"
        _ = try Converter(map: try TensorMap(checkpoint: try Checkpoint(path: m)), recipe: .builtin(.int4))
            .convert(to: packed, metadata: ["model": try JSONParser.parse(try MappedFile.contents(of: m + "/config.json"))], blobs: [])
        // Three windows in batches of two: a full batch and a partial one.
        let windows = EvaluationWindows(tokens: Self.heldout, ctx: 128, maxWindows: 3)
        let r = try Verification.run(original: HybridModel(weights: try CheckpointWeights(path: m)),
                                     quantized: HybridModel(weights: try PackedWeights(path: packed)), windows: windows, batchSize: 2)
        let po = try Perplexity.evaluate(model: HybridModel(weights: try CheckpointWeights(path: m)), windows: windows, batchSize: 2)
        let pq = try Perplexity.evaluate(model: HybridModel(weights: try PackedWeights(path: packed)), windows: windows, batchSize: 2)
        XCTAssertEqual(r.original.ppl, po.ppl)
        XCTAssertEqual(r.quantized.ppl, pq.ppl)
        XCTAssertEqual(r.tokensScored, po.tokensScored)
        // And INT4 is measurably but not wildly off.
        XCTAssertGreaterThan(r.kld.mean, 0)
        XCTAssertLessThan(r.kld.mean, 0.5)
        XCTAssertGreaterThan(r.top1Agreement, 0.5)
        for l in r.layers { XCTAssertGreaterThan(l.relError, 0); XCTAssertLessThan(l.relError, 1) }
    }

    func testDifferentArchitecturesAreRejected() throws {
        XCTAssertThrowsError(try verify(try CheckpointWeights(path: Fixtures.model("nemotron-h-tiny-moe")),
                                        try CheckpointWeights(path: Fixtures.model("nemotron-h-tiny-dense")))) { e in
            XCTAssertTrue("\(e)".contains("layer patterns"), "\(e)")
        }
    }
}
