import Foundation
import XCTest
import Formats
import Quantize
import Calibrate
import Model
import TestSupport

/// MXFP4 and NVFP4 packs of the fixture model: every section checked against its codec, and
/// the packed reader returns exactly the values the codec gives for the tensor (NVFP4 with one
/// global scale per expert, and per SSM head in in_proj).
final class FP4PackTests: XCTestCase {
    func testPacksReadBackExactlyTheValuesWritten() throws {
        let dir = NSTemporaryDirectory() + "nemo-fp4-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ck = try Checkpoint(path: Fixtures.model("nemotron-h-tiny-moe"))
        let map = try TensorMap(checkpoint: ck)
        let headDim = try XCTUnwrap(map.config.mamba).headDim
        for name in ["mxfp4", "nvfp4"] {
            let out = dir + "/\(name).nemo"
            _ = try Converter(map: map, recipe: try Recipe.load(name))
                .convert(to: out, metadata: ["model": try JSONParser.parse(ck.configBytes)], blobs: [])
            let packed = try PackedWeights(path: out)
            let check = PackedVerification.run(packed.file)
            XCTAssertTrue(check.ok, "\(name): \(String(describing: check.firstFailure))")
            let scheme = try XCTUnwrap(QuantScheme(name))
            var checked = 0
            for t in map.tensors where [.expertUp, .expertDown, .mambaOutProj, .attnQ, .mambaInProj].contains(t.role) {
                let (rows, cols) = Recipe.storageShape(role: t.role, shape: t.data.shape)
                var w = [Float](repeating: 0, count: rows * cols)
                FloatConversion.convert(t.data.plain!.bytes, dtype: t.data.dtype, count: rows * cols, into: &w)
                var got = [Float](repeating: .nan, count: rows * cols)
                try packed.load(t.role, layer: t.layer, expert: t.expert, into: &got)
                // in_proj: its first SSM head's rows (the z segment's first block of rows).
                let n = t.role == .mambaInProj ? headDim : rows
                let expected = quantize(w, rows: n, cols: cols, scheme: scheme).dequantized()
                XCTAssertEqual(Array(got[0..<(n * cols)]).map(\.bitPattern), expected.map(\.bitPattern), "\(name) \(t.name)")
                checked += 1
            }
            XCTAssertGreaterThan(checked, 10)
            let insp = try PackedInspection(file: packed.file)
            let up = try XCTUnwrap(insp.tensors.first { $0.name == "backbone.layers.1.mixer.experts.3.up_proj.weight" })
            let inProj = try XCTUnwrap(insp.tensors.first { $0.name == "backbone.layers.0.mixer.in_proj.weight" })
            if name == "mxfp4" {
                XCTAssertEqual(up.segments[0].layout, "E8M0 scales [128, 8] per block of 32 cols")
                XCTAssertEqual(up.storedBytes, 128 * 128 + 128 * 8)
                XCTAssertEqual(up.bitsPerWeight, 4.25, accuracy: 1e-9)
            } else {
                XCTAssertEqual(up.segments[0].layout, "E4M3 scales [128, 16] per block of 16 cols, one global scale")
                XCTAssertEqual(up.storedBytes, 128 * 128 + 128 * 16 + 4)
                XCTAssertEqual(inProj.segments[0].layout,
                               "E4M3 scales [256, 16] per block of 16 cols, global scales [8] one per SSM head (32 rows)")
                XCTAssertEqual(inProj.segments[0].storedBytes, 256 * 128 + 256 * 16 + 8 * 4)
            }
        }
    }
}
