import XCTest
import Formats
@testable import Model
import TestSupport

/// The forward pass against the Hugging Face transformers implementation's own outputs
/// (fixtures/*/golden.safetensors, float32 from the stored bf16 weights).
final class GoldenForwardTests: XCTestCase {
    final class Capture: ForwardObserver {
        var blocks: [Int: [Float]] = [:]
        var routes: [Int: [Int32]] = [:]
        let rows: Int
        init(rows: Int) { self.rows = rows }
        func blockOutput(layer: Int, hidden: UnsafePointer<Float>, rows: Int, width: Int) {
            blocks[layer] = Array(UnsafeBufferPointer(start: hidden, count: self.rows * width))
        }
        func routing(layer: Int, tokens: Int, topK: Int, indices: UnsafePointer<Int32>, weights: UnsafePointer<Float>) {
            routes[layer] = Array(UnsafeBufferPointer(start: indices, count: tokens * topK))
        }
    }

    func relFrobenius(_ a: [Float], _ b: [Float]) -> Double {
        var num = 0.0, den = 0.0
        for i in 0..<a.count { let d = Double(a[i] - b[i]); num += d * d; den += Double(b[i]) * Double(b[i]) }
        return (num / den).squareRoot()
    }

    func check(_ name: String) throws {
        let golden = try SafetensorsFile(path: Fixtures.model(name) + "/golden.safetensors")
        let tokView = golden.view("tokens")!
        XCTAssertEqual(tokView.dtype, .i32)
        let (nseq, T) = (tokView.shape[0], tokView.shape[1])
        let tokens: [Int32] = (0..<nseq * T).map { tokView.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self) }
        let model = HybridModel(weights: try CheckpointWeights(path: Fixtures.model(name)))
        let cfg = model.config
        let batch = Batch(windows: nseq, length: T)
        let cap = Capture(rows: T)
        let x = try model.hiddenStates(tokens, batch: batch, observer: cap)

        // Embeddings and every block output of sequence 0.
        for l in 0..<cfg.layers.count {
            let g = try golden.view("block_out.\(l)")!.floats()
            let e = relFrobenius(cap.blocks[l]!, g)
            XCTAssertLessThanOrEqual(e, 1e-4, "\(name) block_out.\(l) (\(cfg.layers[l].name)) relative error \(e)")
        }
        let normF = try golden.view("norm_f")!.floats()
        XCTAssertLessThanOrEqual(relFrobenius(Array(x.array[0..<(T * cfg.hiddenSize)]), normF), 1e-4)

        // Logits of both sequences.
        let head = try model.loadHead()
        let logits = FloatBuffer(count: batch.rows * cfg.vocabSize)
        model.logits(x.pointer, rows: batch.rows, head: head, into: logits.pointer)
        let gl = try golden.view("logits")!.floats()
        var maxAbs: Float = 0, maxDiff: Float = 0
        for i in 0..<gl.count { maxAbs = max(maxAbs, abs(gl[i])); maxDiff = max(maxDiff, abs(gl[i] - logits[i])) }
        XCTAssertLessThanOrEqual(maxDiff, 1e-3 * maxAbs, "\(name) logits max |Δ| \(maxDiff), max |logit| \(maxAbs)")

        // Router choices, as sets per token (HF's topk runs with sorted=False).
        var moeLayers = 0
        for (l, kind) in cfg.layers.enumerated() where kind == .moe {
            moeLayers += 1
            let gv = golden.view("router.\(l).topk_indices")!
            let k = gv.shape.last!
            let gi: [Int32] = (0..<gv.elementCount).map { gv.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self) }
            let ours = cap.routes[l]!
            for t in 0..<T {
                XCTAssertEqual(Set(ours[(t * k)..<((t + 1) * k)]), Set(gi[(t * k)..<((t + 1) * k)]), "\(name) layer \(l) token \(t)")
            }
        }
        if cfg.layers.contains(.moe) { XCTAssertGreaterThan(moeLayers, 0) }
    }

    func testTinyMoEMatchesTransformers() throws { try check("nemotron-h-tiny-moe") }
    func testTinyDenseMatchesTransformers() throws { try check("nemotron-h-tiny-dense") }
}
