import XCTest
import Foundation
import Formats
import Calibrate
import Model
import TestSupport

/// Issue 10, item 3: statistics are checked against the weights they calibrate before any work,
/// and counters saturate instead of trapping.
final class StatsValidationTests: ScratchDirectoryTestCase {
    let moe = Fixtures.model("nemotron-h-tiny-moe")

    func config() throws -> ModelConfig { try Checkpoint(path: moe).config }

    /// A statistics file with one entry, for lm_head (its input width is the hidden size).
    func statsFile(width: Int, gram: [Float]? = nil) throws -> String {
        let path = dir + "/bad.stats.safetensors"
        let w = try StatsFileWriter(path: path, modelType: try config().modelType, contextLength: 256)
        let s = CalibrationStats()
        s.set(StatsKey(.lmHead, layer: nil), LinearStats(width: width, rows: 100, sumSquares: .init(repeating: 1, count: width),
                                                        absMax: .init(repeating: 1, count: width), gram: gram))
        try w.write(s)
        try w.finish(tokens: 100)
        return path
    }

    func testStatisticsOfAnotherWidthAreRefusedBeforeAnyWork() throws {
        let h = try config().hiddenSize
        let stats = try statsFile(width: h + 3)
        let name = StatsKey(.lmHead, layer: nil).name
        // mse and awq used to read past the importance array and write a pack; gptq trapped.
        for method in ["mse", "awq", "gptq"] {
            let out = dir + "/o.nemo"
            let r = try CLIRunner.run(["convert", moe, "-o", out, "--stats", stats, "--method", method])
            XCTAssertEqual(r.status, 65, method + r.stderr)
            XCTAssertEqual(r.stderr, "error: \(stats): tensor '\(name).sum_sq': width \(h + 3), but the weight '\(name)' has \(h) input columns (statistics of another model?)\n", method)
            XCTAssertEqual(listing(), ["bad.stats.safetensors"], "no output, no temporary")
        }
    }

    func testHessianFailureNamesTheFileAndTensor() throws {
        let h = try config().hiddenSize
        // Off-diagonal entries far larger than the diagonal: no damping makes this positive definite.
        var g = [Float](repeating: 1e6, count: h * h)
        for i in 0..<h { g[i * h + i] = 1 }
        let stats = try statsFile(width: h, gram: g)
        let r = try CLIRunner.run(["convert", moe, "-o", dir + "/o.nemo", "--stats", stats, "--recipe", "int4"])
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertEqual(r.stderr, "error: \(stats): tensor 'lm_head.weight': the \(h)×\(h) calibration Hessian is not positive definite even with heavy damping (its 100 calibration rows do not span the weight's \(h) input columns; more or other calibration text, or a larger --damp, may help)\n")
        XCTAssertEqual(listing(), ["bad.stats.safetensors"])
    }

    func testCountersSaturateOnMerge() throws {
        let a = LinearStats(width: 2, rows: .max - 1, sumSquares: [1, 1], absMax: [1, 1], gram: nil)
        a.merge(LinearStats(width: 2, rows: 10, sumSquares: [1, 1], absMax: [1, 1], gram: nil))
        XCTAssertEqual(a.rows, .max)
        a.merge(LinearStats(width: 2, rows: .max, sumSquares: [1, 1], absMax: [1, 1], gram: nil), weight: 4)
        XCTAssertEqual(a.rows, .max)

        let x = CalibrationStats(), y = CalibrationStats()
        x.tokens = .max; y.tokens = 5
        x.setRouting(layer: 1, counts: [.max, 1]); y.setRouting(layer: 1, counts: [7, 1])
        try x.merge(y, file: "y")
        XCTAssertEqual(x.tokens, .max)
        XCTAssertEqual(x.routingCounts[1], [.max, 2])
    }
}
