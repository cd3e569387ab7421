import XCTest
import Calibrate
import Model
import Formats
import Quantize
import TestSupport

/// Issue 10 §2 and §14: a packed file whose header was edited and re-checksummed — so every
/// integrity check passes — is still refused when its tensor table disagrees with its embedded
/// config, its sections with their schemes, or its preamble with version 1; the error names the
/// tensor. Each case edits a real int4 pack of the tiny MoE fixture with `PackedHeaderEdit`.
final class PackedHeaderTrustTests: ScratchDirectoryTestCase {
    var path = ""
    static var original: [UInt8] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        path = dir + "/moe.nemo"
        if Self.original.isEmpty {
            let model = Fixtures.model("nemotron-h-tiny-moe")
            let ck = try Checkpoint(path: model)
            _ = try Converter(map: try TensorMap(checkpoint: ck), recipe: try Recipe.load("int4"))
                .convert(to: path, metadata: ["model": try JSONParser.parse(ck.configBytes)],
                         blobs: [("tokenizer.json", try MappedFile.contents(of: model + "/tokenizer.json"))])
            Self.original = try MappedFile.contents(of: path)
        }
    }

    /// Writes the fixture pack with its header edited, then expects every reader to refuse it
    /// with exactly `message` (after the path).
    /// `schemeAware`: only the readers that parse schemes (Quantize and up) can check section sizes.
    func assertRefused(_ message: String, line: UInt = #line, schemeAware: Bool = false, preamble: (inout [UInt8]) -> Void = { _ in },
                       _ edit: (inout JSONObject) throws -> Void = { _ in }) throws {
        let bytes = try PackedHeaderEdit.rewrite(Self.original, preamble: preamble, edit)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        for (reader, open) in [("PackedFile", { _ = try PackedFile(path: self.path) }),
                               ("PackedWeights", { _ = try PackedWeights(path: self.path) }),
                               ("PackedInspection", { _ = try PackedInspection(file: PackedFile(path: self.path)) })] as [(String, () throws -> Void)]
            where !(schemeAware && reader == "PackedFile") {
            XCTAssertThrowsError(try open(), reader, line: line) { e in
                XCTAssertEqual("\(e)", "\(path): " + message, reader, line: line)
            }
        }
    }

    func tensorIndex(_ h: JSONObject, _ name: String) -> Int {
        h["tensors"]!.arrayValue!.firstIndex { $0["name"]?.stringValue == name }!
    }

    func editTensor(_ h: inout JSONObject, _ name: String, _ edit: (inout JSONObject) -> Void) {
        var ts = h["tensors"]!.arrayValue!
        let i = tensorIndex(h, name)
        var o = ts[i].objectValue!
        edit(&o)
        ts[i] = .object(o)
        h["tensors"] = .array(ts)
    }

    func editConfig(_ h: inout JSONObject, _ edit: (inout JSONObject) -> Void) {
        var m = h["model"]!.objectValue!
        edit(&m)
        h["model"] = .object(m)
    }

    func testUneditedRewriteStillOpens() throws {
        try Data(try PackedHeaderEdit.rewrite(Self.original) { _ in }).write(to: URL(fileURLWithPath: path))
        let w = try PackedWeights(path: path)
        XCTAssertEqual(w.file.tensors.count, 289)
        XCTAssertNoThrow(try w.file.verify())
    }

    func testNormDeclaredWiderThanHidden() throws {
        try assertRefused("tensor 'backbone.layers.0.norm.weight': shape [512], but the embedded config.json implies [256]") {
            self.editTensor(&$0, "backbone.layers.0.norm.weight") { $0["shape"] = [512] }
        }
    }

    func testEmbeddedConfigFieldChanged() throws {
        try assertRefused("tensor 'backbone.layers.1.mixer.experts.0.up_proj.weight': shape [128, 256], but the embedded config.json implies [127, 256]") {
            self.editConfig(&$0) { $0["moe_intermediate_size"] = 127 }
        }
    }

    func testVocabularyRaisedInEmbeddedConfig() throws {
        try assertRefused("tensor 'backbone.embeddings.weight': shape [4096, 256], but the embedded config.json implies [8192, 256]") {
            self.editConfig(&$0) { $0["vocab_size"] = 8192 }
        }
    }

    func testTwoTensorsRolesSwapped() throws {
        try assertRefused("tensor 'backbone.layers.1.mixer.experts.0.up_proj.weight': role expert_down at layer 1, expert 0 is the tensor named backbone.layers.1.mixer.experts.0.down_proj.weight, not this one") {
            self.editTensor(&$0, "backbone.layers.1.mixer.experts.0.up_proj.weight") { $0["role"] = "expert_down" }
            self.editTensor(&$0, "backbone.layers.1.mixer.experts.0.down_proj.weight") { $0["role"] = "expert_up" }
        }
    }

    func testLayerAndExpertIndicesOutOfRange() throws {
        try assertRefused("tensor 'backbone.layers.1.mixer.experts.15.up_proj.weight': role expert_up at layer 1, expert 16 is not a tensor of the model the embedded config.json describes (MEMEM*EMEMEM*E)") {
            self.editTensor(&$0, "backbone.layers.1.mixer.experts.15.up_proj.weight") { $0["expert"] = 16 }
        }
        try assertRefused("tensor 'backbone.layers.0.norm.weight': role layer_norm at layer 14 is not a tensor of the model the embedded config.json describes (MEMEM*EMEMEM*E)") {
            self.editTensor(&$0, "backbone.layers.0.norm.weight") { $0["layer"] = 14 }
        }
        try assertRefused("tensor 'backbone.layers.0.mixer.in_proj.weight': role expert_up at layer 0, expert 0 is not a tensor of the model the embedded config.json describes (MEMEM*EMEMEM*E)") {
            self.editTensor(&$0, "backbone.layers.0.mixer.in_proj.weight") { $0["role"] = "expert_up"; $0["expert"] = 0 }
        }
    }

    func testMissingTensor() throws {
        try assertRefused("missing tensor 'backbone.layers.6.mixer.experts.3.down_proj.weight (the tensor table has 288 of the 289 tensors the embedded config.json implies)'") { h in
            var ts = h["tensors"]!.arrayValue!
            ts.remove(at: self.tensorIndex(h, "backbone.layers.6.mixer.experts.3.down_proj.weight"))
            h["tensors"] = .array(ts)
        }
    }

    func testHugeExpertCountInEmbeddedConfigFailsFast() throws {
        let start = Date()
        try assertRefused("tensor 'backbone.layers.1.mixer.gate.weight': shape [16, 256], but the embedded config.json implies [16777216, 256]") {
            self.editConfig(&$0) { $0["n_routed_experts"] = .int(1 << 24) }
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    }

    /// Issue 11: section sizes come from the codec, byte-scale and two-level formats included. An
    /// int4-g128 expert [128, 256] relabelled nvfp4 has the right codes (two per byte) but lacks
    /// the global scale, and a global_scales section of another size than the codec declares (one per
    /// block of rows) is refused before decoding.
    func testFP4SectionSizesComeFromTheCodec() throws {
        let up = "backbone.layers.1.mixer.experts.2.up_proj.weight"
        func relabel(_ o: inout JSONObject) {
            var a = o["attributes"]!.objectValue!
            a["segments"] = [["name": "", "rows": [0, 128], "scheme": "nvfp4"]]
            o["attributes"] = .object(a)
        }
        try assertRefused("tensor '\(up)': missing section 'global_scales' that its scheme stores", schemeAware: true) {
            self.editTensor(&$0, up, relabel)
        }
        // The int4 scales renamed global_scales: 256 floats where NVFP4 keeps one per tensor.
        try assertRefused("tensor '\(up)': section 'global_scales' holds 1024 bytes, its scheme needs 4", schemeAware: true) {
            self.editTensor(&$0, up) { o in
                relabel(&o)
                var s = o["sections"]!.objectValue!
                s["global_scales"] = s["scales"]
                s["scales"] = nil
                o["sections"] = .object(s)
            }
        }
        // block_rows counts: one global scale per row is 128 of them.
        try assertRefused("tensor '\(up)': section 'global_scales' holds 1024 bytes, its scheme needs 512", schemeAware: true) {
            self.editTensor(&$0, up) { o in
                var s = o["sections"]!.objectValue!
                s["global_scales"] = s["scales"]
                s["scales"] = nil
                o["sections"] = .object(s)
                var a = o["attributes"]!.objectValue!
                a["segments"] = [["name": "", "rows": [0, 128], "scheme": "nvfp4", "block_rows": 1]]
                o["attributes"] = .object(a)
            }
        }
    }

    func testSectionSizeDisagreesWithScheme() throws {
        // Same sections, a scheme that needs twice the scales.
        try assertRefused("tensor 'backbone.layers.1.mixer.experts.2.up_proj.weight': section 'scales' holds 1024 bytes, its scheme needs 2048", schemeAware: true) {
            self.editTensor(&$0, "backbone.layers.1.mixer.experts.2.up_proj.weight") { o in
                var a = o["attributes"]!.objectValue!
                a["segments"] = [["name": "", "rows": [0, 128], "scheme": "int4-g64-sym"]]
                o["attributes"] = .object(a)
            }
        }
        try assertRefused("tensor 'backbone.layers.1.mixer.experts.2.up_proj.weight': missing section 'scales' that its scheme stores", schemeAware: true) {
            self.editTensor(&$0, "backbone.layers.1.mixer.experts.2.up_proj.weight") { o in
                var s = o["sections"]!.objectValue!
                s["scales"] = nil
                o["sections"] = .object(s)
            }
        }
    }

    func testBlobRawLengthBeyondAnyStoredFile() throws {
        let blob = try XCTUnwrap(PackedFile(path: { try! Data(Self.original).write(to: URL(fileURLWithPath: path)); return path }()).blobs["tokenizer.json"])
        XCTAssertNotEqual(blob.encoding, .raw, "the fixture's tokenizer.json compresses")
        try assertRefused("tensor 'blob tokenizer.json': raw_length 1099511627776 is more than zstd can encode in \(blob.length) bytes") {
            var b = $0["blobs"]!.objectValue!
            var t = b["tokenizer.json"]!.objectValue!
            t["raw_length"] = .int(1 << 40)
            b["tokenizer.json"] = .object(t)
            $0["blobs"] = .object(b)
        }
        try assertRefused("tensor 'blob tokenizer.json': raw_length 2147483648 exceeds the 1073741824-byte limit for a stored file") {
            var b = $0["blobs"]!.objectValue!
            var t = b["tokenizer.json"]!.objectValue!
            t["raw_length"] = .int(1 << 31)
            b["tokenizer.json"] = .object(t)
            $0["blobs"] = .object(b)
        }
    }

    func testUnknownFlagsAndReservedBytes() throws {
        try assertRefused("packed file sets flags 0x4, which version 1 does not define", preamble: { $0[12] = 4 })
        try assertRefused("reserved preamble byte 63 is 0x1, not 0", preamble: { $0[63] = 1 })
    }

    func testInspectVerifyExits65NamingTheTensor() throws {
        let bytes = try PackedHeaderEdit.rewrite(Self.original) {
            self.editTensor(&$0, "backbone.layers.0.norm.weight") { $0["shape"] = [512] }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r = try CLIRunner.run(["inspect", path, "--verify"])
        XCTAssertEqual(r.status, 65)
        XCTAssertEqual(r.stderr, "error: \(path): tensor 'backbone.layers.0.norm.weight': shape [512], but the embedded config.json implies [256]\n")
    }
}
