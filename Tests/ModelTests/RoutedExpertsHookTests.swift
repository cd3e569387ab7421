import XCTest
import Formats
@testable import Model
import TestSupport

/// `ForwardObserver.routedExperts`, the model's one hook for calibration's every-expert pass:
/// called once per MoE layer per batch with the layer's expert widths, and whatever the observer
/// runs through it never reaches the layer's output.
final class RoutedExpertsHookTests: XCTestCase {
    /// Runs every expert on every row, as calibration does, and records what it saw.
    final class FeedAll: ForwardObserver {
        var calls: [(layer: Int, count: Int, width: Int, mid: Int, rows: Int)] = []
        var sums: [Double] = []
        func routedExperts(_ experts: RoutedExperts, input: UnsafePointer<Float>, rows: Int) throws {
            calls.append((experts.layer, experts.count, experts.inputWidth, experts.intermediateSize, rows))
            let mid = FloatBuffer(count: rows * experts.intermediateSize), out = FloatBuffer(count: rows * experts.inputWidth)
            for e in 0..<experts.count {
                try experts.run(expert: e, input, rows: rows, mid: mid.pointer, into: out.pointer)
                sums.append(out.array.reduce(0) { $0 + Double($1) })
            }
        }
    }

    func testHookSeesEveryMoELayerAndLeavesOutputsBitIdentical() throws {
        let model = HybridModel(weights: try CheckpointWeights(path: Fixtures.tinyMoE))
        let cfg = model.config
        let moe = try XCTUnwrap(cfg.moe)
        let batch = Batch(windows: 2, length: 16)
        let tokens = (0..<batch.rows).map { Int32(($0 * 37 + 11) % cfg.vocabSize) }

        let plain = try model.hiddenStates(tokens, batch: batch).array
        let observer = FeedAll()
        let observed = try model.hiddenStates(tokens, batch: batch, observer: observer).array

        XCTAssertEqual(plain.map(\.bitPattern), observed.map(\.bitPattern))
        let moeLayers = cfg.layers.indices.filter { cfg.layers[$0] == .moe }
        XCTAssertFalse(moeLayers.isEmpty)
        XCTAssertEqual(observer.calls.map(\.layer), moeLayers)
        for c in observer.calls {
            XCTAssertEqual(c.count, moe.experts)
            XCTAssertEqual(c.width, moe.latentSize ?? cfg.hiddenSize)
            XCTAssertEqual(c.mid, moe.intermediateSize)
            XCTAssertEqual(c.rows, batch.rows)
        }
        // Experts ran on real weights: finite and not all zero.
        XCTAssertEqual(observer.sums.count, moeLayers.count * moe.experts)
        XCTAssertTrue(observer.sums.allSatisfy { $0.isFinite })
        XCTAssertTrue(observer.sums.contains { $0 != 0 })
    }
}
