import XCTest
import Calibrate
import Model
import Formats
import Quantize
@testable import Verify
import TestSupport

/// Issue 10 §4: a NaN is never a success. Non-finite source weights and values a scheme cannot
/// hold stop convert naming the file, tensor and element; a model whose logits are not finite
/// makes perplexity and verify exit 65 instead of printing -nan or a KL of 0.
final class NonFiniteTests: ScratchDirectoryTestCase {
    let moe = Fixtures.model("nemotron-h-tiny-moe")
    let text = Fixtures.text("kjv-heldout.txt")

    /// The MoE fixture copied to `dir/name` with BF16 element `index` of `tensor` set to `bits`.
    func fixture(_ name: String, _ tensor: String, _ index: Int, _ bits: UInt16) throws -> String {
        let out = dir + "/" + name
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        for f in ["config.json", "tokenizer.json"] { try FileManager.default.copyItem(atPath: moe + "/" + f, toPath: out + "/" + f) }
        let ck = try Checkpoint(path: moe)
        let tensors: [(TensorDeclaration, [UInt8])] = ck.tensorNames.map { n in
            let v = ck.view(n)!
            var b = Array(v.bytes)
            if n == tensor { XCTAssertEqual(v.dtype, .bf16); b[2 * index] = UInt8(bits & 0xFF); b[2 * index + 1] = UInt8(bits >> 8) }
            return (TensorDeclaration(name: n, dtype: v.dtype, shape: v.shape), b)
        }
        try SafetensorsWriter.write(to: out + "/model.safetensors", tensors: tensors)
        return out
    }

    func convert(_ model: String, _ recipe: Recipe, encoder: SegmentEncoder? = nil) throws {
        let c = Converter(map: try TensorMap(checkpoint: try Checkpoint(path: model)), recipe: recipe)
        c.threads = 2
        let w = try PackedWriter(path: dir + "/out.nemo")
        for (t, p) in try c.plans() { _ = try c.writeTensor(t, p, to: w, encoder: encoder) }
    }

    struct PassThrough: SegmentEncoder {
        func encode(_ w: UnsafeMutablePointer<Float>, rows n: Int, cols: Int, segment: TensorPlan.Segment, firstRow: Int,
                    blockScales: [Float]?, codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?,
                    zeroPoints: UnsafeMutablePointer<UInt8>?) {
            SegmentCodec.encode(w, rows: n, cols: cols, segment: segment, firstRow: firstRow, blockScales: blockScales,
                                codes: codes, scales: scales, zeroPoints: zeroPoints)
        }
    }

    /// Round to nearest turned an Inf into finite codes and kept tensors copied NaN verbatim.
    func testNonFiniteSourceValuesStopConvertNamingTheElement() throws {
        let up = "backbone.layers.1.mixer.experts.3.up_proj.weight"
        let nan = try fixture("nan", up, 5 * 256 + 7, 0x7FC0)
        let inf = try fixture("inf", up, 100 * 256 + 3, 0xFF80)
        let norm = try fixture("norm", "backbone.layers.0.norm.weight", 9, 0x7F80)
        for (model, recipe, message) in [
            (nan, Recipe.builtin(.int4), "tensor '\(up)': non-finite value nan at [5, 7]"),
            (inf, Recipe.builtin(.int8), "tensor '\(up)': non-finite value -inf at [100, 3]"),
            (inf, Recipe.builtin(.fp8), "tensor '\(up)': non-finite value -inf at [100, 3]"),
            (norm, Recipe.builtin(.int8), "tensor 'backbone.layers.0.norm.weight': non-finite value inf at [0, 9]"),
        ] {
            for encoder in [nil, PassThrough()] as [SegmentEncoder?] {
                XCTAssertThrowsError(try convert(model, recipe, encoder: encoder)) { e in
                    XCTAssertEqual("\(e)", "\(model)/model.safetensors: \(message); `nemo-convert inspect --verify` counts them per tensor")
                }
            }
        }
    }

    /// A finite BF16 weight of 1e5 became Inf under an f16 recipe, and the NaN model passed verify.
    func testValueBeyondF16StopsConvert() throws {
        let up = "backbone.layers.1.mixer.experts.3.up_proj.weight"
        let big = try fixture("big", up, 2 * 256 + 1, BF16Codec.encode(1e5))
        let v = BF16Codec.decode(BF16Codec.encode(1e5))
        for encoder in [nil, PassThrough()] as [SegmentEncoder?] {
            XCTAssertThrowsError(try convert(big, Recipe(name: "f16", defaultScheme: .f16), encoder: encoder)) { e in
                XCTAssertEqual("\(e)", "\(big)/model.safetensors: tensor '\(up)': value \(v) at [2, 1] is not finite in f16 (largest finite 65504); store this tensor as bf16 or f32")
            }
        }
    }

    func testKLDivergenceOfNonFiniteLogitsIsNaNNotZero() {
        let p: [Float] = [1, 2, 3, 4], work = UnsafeMutablePointer<Float>.allocate(capacity: 8)
        defer { work.deallocate() }
        for q: [Float] in [[1, .nan, 3, 4], [.nan, .nan, .nan, .nan], [1, 2, .infinity, 4]] {
            XCTAssertTrue(LogitComparison.klDivergence(p, q, count: 4, work: work).isNaN, "\(q)")
            XCTAssertTrue(LogitComparison.klDivergence(q, p, count: 4, work: work).isNaN, "\(q)")
        }
        XCTAssertEqual(LogitComparison.klDivergence(p, p, count: 4, work: work), 0)
    }

    func testPerplexityOfANaNModelIsAnError() throws {
        let nan = try fixture("nan", "backbone.layers.0.norm.weight", 9, 0x7FC0)
        let m = HybridModel(weights: CheckpointWeights(map: try TensorMap(checkpoint: try Checkpoint(path: nan))))
        let ids = (0..<64).map { Int32($0 * 7 % 4096) }
        XCTAssertThrowsError(try Perplexity.evaluate(model: m, windows: EvaluationWindows(tokens: ids, ctx: 32, maxWindows: 1))) { e in
            XCTAssertEqual("\(e)", "negative log-likelihood is nan at window 0, token 0: the model's logits are not finite, so its weights or config.json are broken (inspect --verify checks the weights)")
        }
    }

    // MARK: the command line

    func cli(_ args: [String]) throws -> (status: Int32, stderr: String) {
        let r = try CLIRunner.run(args)
        return (r.status, r.stderr)
    }

    func testCommandsExit65OnNonFiniteModels() throws {
        let nan = try fixture("nan", "backbone.layers.0.norm.weight", 9, 0x7FC0)
        let why = "negative log-likelihood is nan at window 0, token 0%@: the model's logits are not finite, so its weights or config.json are broken (inspect --verify checks the weights)\n"
        var r = try cli(["perplexity", nan, "--text", text, "--max-windows", "1", "--json"])
        XCTAssertEqual(r.status, 65)
        XCTAssertEqual(r.stderr, "error: \(nan): " + why.replacingOccurrences(of: "%@", with: ""))
        r = try cli(["verify", moe, nan, "--text", text, "--max-windows", "1", "--max-kld", "0.05", "--json"])
        XCTAssertEqual(r.status, 65)
        XCTAssertEqual(r.stderr, "error: \(nan): " + why.replacingOccurrences(of: "%@", with: " of the quantized model"))
        r = try cli(["verify", nan, moe, "--text", text, "--max-windows", "1", "--json"])
        XCTAssertEqual(r.status, 65)
        XCTAssertEqual(r.stderr, "error: \(nan): " + why.replacingOccurrences(of: "%@", with: " of the original model"))
        let out = dir + "/never.nemo"
        r = try cli(["convert", nan, "-o", out, "--recipe", "int4", "--json"])
        XCTAssertEqual(r.status, 65)
        XCTAssertEqual(r.stderr, "error: \(nan)/model.safetensors: tensor 'backbone.layers.0.norm.weight': non-finite value nan at [0, 9]; `nemo-convert inspect --verify` counts them per tensor\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// Issue 10 §10 at the command line: a group size the reader would refuse is a usage error.
    func testGroupSizeBeyondTheReadersLimitIsAUsageError() throws {
        for g in ["1000000000", "9223372036854775807"] {
            let r = try cli(["convert", moe, "-o", dir + "/g.nemo", "--group-size", g])
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertTrue(r.stderr.contains("--group-size must be between 1 and 16777216"), r.stderr)
        }
    }
}
