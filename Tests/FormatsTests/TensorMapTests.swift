import XCTest
@testable import Formats
import TestSupport

final class TensorMapTests: XCTestCase {
    func testBothFixturesBindCompletely() throws {
        for (dir, count, elements) in [(Fixtures.tinyMoE, 289, 10_932_976), (Fixtures.tinyDense, 85, 6_189_712)] {
            let ck = try Checkpoint(path: dir)
            let map = try TensorMap(checkpoint: ck)
            XCTAssertEqual(map.unexpected, [], dir)
            XCTAssertEqual(map.skipped, [], dir)
            XCTAssertEqual(map.tensors.count, count, dir)
            XCTAssertEqual(ck.tensorNames.count, count, dir)
            XCTAssertEqual(map.tensors.reduce(0) { $0 + $1.data.elementCount }, elements, dir)
            XCTAssertEqual(Set(map.tensors.map(\.source)), Set(ck.tensorNames))
            for t in map.tensors { XCTAssertEqual(t.name, t.source, "hub names bind to themselves") }
        }
        let map = try TensorMap(checkpoint: Checkpoint(path: Fixtures.tinyMoE))
        let up = try XCTUnwrap(map.tensor(.expertUp, layer: 1, expert: 15))
        XCTAssertEqual(up.name, "backbone.layers.1.mixer.experts.15.up_proj.weight")
        XCTAssertEqual(up.data.shape, [128, 256])
        XCTAssertEqual(map.tensor(.routerBias, layer: 13)?.data.dtype, .f32)
        XCTAssertNil(map.tensor(.expertUp, layer: 0, expert: 0), "layer 0 is Mamba")
    }

    func testSingleFilePathOpensItsDirectory() throws {
        let ck = try Checkpoint(path: Fixtures.tinyDense + "/model.safetensors")
        XCTAssertEqual(ck.config.pattern, "M-M-M*-M-M-M*-")
        XCTAssertNoThrow(try TensorMap(checkpoint: ck))
    }

    /// transformers 5 layout: `model.` prefix and experts stacked into `[E, out, in]` without `.weight`.
    func testStackedExpertsAndModelPrefixBindToTheSameBytes() throws {
        let dir = temporaryDirectory(self)
        let original = try Checkpoint(path: Fixtures.tinyMoE)
        let config = original.config
        var stacked: [Tensor] = []
        for l in 0..<config.layers.count where config.layers[l] == .moe {
            for proj in ["up_proj", "down_proj"] {
                var bytes: [UInt8] = []
                var inner: [Int] = []
                for k in 0..<config.moe!.experts {
                    let v = original.view("backbone.layers.\(l).mixer.experts.\(k).\(proj).weight")!
                    bytes += Array(v.bytes)
                    inner = v.shape
                }
                stacked.append(Tensor("model.layers.\(l).mixer.experts.\(proj)", .bf16, [config.moe!.experts] + inner, bytes))
            }
        }
        _ = try copyFixture(Fixtures.tinyMoE, to: dir, transform: { t in
            t.name.contains(".experts.") ? [] : [Tensor(t.name.replacingOccurrences(of: "backbone.", with: "model."), t.dtype, t.shape, t.bytes)]
        }, extra: stacked)

        let ck = try Checkpoint(path: dir)
        XCTAssertEqual(ck.tensorNames.count, 289 - 6 * 32 + 12)
        let map = try TensorMap(checkpoint: ck)
        XCTAssertEqual(map.unexpected, [])
        let ref = try TensorMap(checkpoint: original)
        XCTAssertEqual(map.tensors.count, ref.tensors.count)
        for (a, b) in zip(map.tensors, ref.tensors) {
            XCTAssertEqual(a.name, b.name)
            XCTAssertEqual(a.role, b.role)
            XCTAssertEqual(a.data.shape, b.data.shape, a.name)
            XCTAssertTrue(a.data.plain!.bytes.elementsEqual(b.data.plain!.bytes), "\(a.name) differs from the original")
        }
        let e = try XCTUnwrap(map.tensor(.expertDown, layer: 3, expert: 7))
        XCTAssertEqual(e.source, "model.layers.3.mixer.experts.down_proj")
        XCTAssertEqual(e.name, "backbone.layers.3.mixer.experts.7.down_proj.weight")
        XCTAssertEqual(map.tensor(.embedding)?.source, "model.embeddings.weight")
        XCTAssertEqual(ModelStats(checkpoint: ck, map: map), ModelStats(checkpoint: original, map: ref))
    }

    func testStackedExpertsWithWrongCountAreReportedOnce() throws {
        let dir = temporaryDirectory(self)
        _ = try copyFixture(Fixtures.tinyMoE, to: dir, transform: { t in
            if t.name == "backbone.layers.1.mixer.experts.0.up_proj.weight" {
                return [Tensor("backbone.layers.1.mixer.experts.up_proj", .bf16, [1] + t.shape, t.bytes)]
            }
            return t.name.hasPrefix("backbone.layers.1.mixer.experts.") && t.name.hasSuffix("up_proj.weight") ? [] : [t]
        })
        assertFormatError("\(dir): checkpoint does not match config.json: 1 mis-shaped tensor(s): backbone.layers.1.mixer.experts.up_proj: shape [1, 128, 256], expected [16, 128, 256]") {
            _ = try TensorMap(checkpoint: Checkpoint(path: dir))
        }
    }

    func testEmbeddingSpellingAndSqueezedConv() throws {
        let dir = temporaryDirectory(self)
        _ = try copyFixture(Fixtures.tinyDense, to: dir, transform: { t in
            if t.name == "backbone.embeddings.weight" { return [Tensor(t.name.replacingOccurrences(of: "embeddings", with: "embedding"), t.dtype, t.shape, t.bytes)] }
            if t.name == "backbone.layers.0.mixer.conv1d.weight" { return [Tensor(t.name, t.dtype, [t.shape[0], t.shape[2]], t.bytes)] }
            return [t]
        })
        let map = try TensorMap(checkpoint: Checkpoint(path: dir))
        XCTAssertEqual(map.tensor(.embedding)?.source, "backbone.embedding.weight")
        XCTAssertEqual(map.tensor(.embedding)?.name, "backbone.embeddings.weight")
        XCTAssertEqual(map.tensor(.mambaConvWeight, layer: 0)?.data.shape, [384, 4])
        XCTAssertEqual(map.unexpected, [])
    }

    func testMTPTensorsAreSkippedAndStrangersReported() throws {
        let dir = temporaryDirectory(self)
        let zeros = [UInt8](repeating: 0, count: 512)
        _ = try copyFixture(Fixtures.tinyDense, to: dir, extra: [
            Tensor("mtp.layers.0.enorm.weight", .bf16, [256], zeros),
            Tensor("mtp.layers.0.eh_proj.weight", .bf16, [1, 256], zeros),
            Tensor("backbone.layers.0.mixer.mystery", .bf16, [256], zeros),
        ])
        let map = try TensorMap(checkpoint: Checkpoint(path: dir), allowUnexpected: true)
        XCTAssertEqual(map.skipped.sorted(), ["mtp.layers.0.eh_proj.weight", "mtp.layers.0.enorm.weight"])
        XCTAssertEqual(map.unexpected, ["backbone.layers.0.mixer.mystery"])
        XCTAssertEqual(map.tensors.count, 85)
    }

    func testTiedLMHead() throws {
        let dir = temporaryDirectory(self)
        _ = try copyFixture(Fixtures.tinyMoE, to: dir, editConfig: { $0["tie_word_embeddings"] = true },
                            transform: { $0.name == "lm_head.weight" ? [] : [$0] })
        let ck = try Checkpoint(path: dir)
        XCTAssertTrue(ck.config.tieWordEmbeddings)
        let map = try TensorMap(checkpoint: ck)
        let head = try XCTUnwrap(map.tensor(.lmHead))
        XCTAssertEqual(head.source, "backbone.embeddings.weight")
        XCTAssertEqual(head.name, "lm_head.weight")
        XCTAssertTrue(head.data.plain!.bytes.elementsEqual(map.tensor(.embedding)!.data.plain!.bytes))
        XCTAssertEqual(ModelStats(checkpoint: ck, map: map).parameters, 10_932_880 - 4096 * 256, "the shared matrix counts once")

        let untied = temporaryDirectory(self)
        _ = try copyFixture(Fixtures.tinyMoE, to: untied, transform: { $0.name == "lm_head.weight" ? [] : [$0] })
        assertFormatError("\(untied): checkpoint does not match config.json: 1 missing tensor(s): lm_head.weight") {
            _ = try TensorMap(checkpoint: Checkpoint(path: untied))
        }
    }

    func testMissingAndMisshapedTensorsAreNamed() throws {
        let dir = temporaryDirectory(self)
        _ = try copyFixture(Fixtures.tinyDense, to: dir, transform: { t in
            switch t.name {
            case "backbone.layers.3.mixer.down_proj.weight", "backbone.norm_f.weight": return []
            case "backbone.layers.0.mixer.in_proj.weight": return [Tensor(t.name, t.dtype, [647, 256], Array(t.bytes[0..<(647 * 512)]))]
            case "backbone.layers.5.mixer.k_proj.weight": return [Tensor(t.name, .i16, t.shape, t.bytes)]
            default: return [t]
            }
        })
        assertFormatError("\(dir): checkpoint does not match config.json: 2 missing tensor(s): backbone.layers.3.mixer.down_proj.weight, backbone.norm_f.weight; 2 mis-shaped tensor(s): backbone.layers.0.mixer.in_proj.weight: shape [647, 256], expected [648, 256]; backbone.layers.5.mixer.k_proj.weight: dtype I16 is not a floating-point type") {
            _ = try TensorMap(checkpoint: Checkpoint(path: dir))
        }
    }

    // MARK: sharded checkpoints

    /// Writes tiny-moe as three shards plus an index; returns the shard of each tensor.
    private func shard(into dir: String, indexEdit: (inout JSONObject) -> Void = { _ in }) throws -> [String: String] {
        let ck = try Checkpoint(path: Fixtures.tinyMoE)
        try writeFileAtomically(dir + "/config.json", contents: readFile(Fixtures.tinyMoE + "/config.json"))
        let names = ck.tensorNames
        var map = JSONObject()
        var owner: [String: String] = [:]
        for s in 0..<3 {
            let file = "model-0000\(s + 1)-of-00003.safetensors"
            let part = names.enumerated().filter { $0.offset * 3 / names.count == s }.map(\.element)
            try writeSafetensors(dir + "/" + file, part.map { Tensor(ck.view($0)!) }, metadata: ["format": "pt"])
            for n in part { map[n] = .string(file); owner[n] = file }
        }
        var index: JSONObject = ["metadata": ["total_size": .int(ck.tensorBytes)], "weight_map": .object(map)]
        indexEdit(&index)
        try writeFileAtomically(dir + "/model.safetensors.index.json", contents: JSONWriter.bytes(.object(index), options: .init(pretty: true)))
        return owner
    }

    func testShardedCopyBindsToIdenticalBytes() throws {
        let dir = temporaryDirectory(self)
        let owner = try shard(into: dir)
        let ck = try Checkpoint(path: dir)
        XCTAssertEqual(ck.files.count, 3)
        let original = try Checkpoint(path: Fixtures.tinyMoE)
        XCTAssertEqual(Set(ck.tensorNames), Set(original.tensorNames))
        for n in original.tensorNames {
            let v = try XCTUnwrap(ck.view(n))
            XCTAssertTrue(v.path.hasSuffix(owner[n]!))
            XCTAssertTrue(v.bytes.elementsEqual(original.view(n)!.bytes), n)
        }
        let map = try TensorMap(checkpoint: ck)
        XCTAssertEqual(map.tensors.count, 289)
        XCTAssertEqual(ModelStats(checkpoint: ck, map: map).parameters, 10_932_880)
    }

    func testIndexNamingAMissingShard() throws {
        let dir = temporaryDirectory(self)
        _ = try shard(into: dir) { index in
            var m = index["weight_map"]!.objectValue!
            m["backbone.norm_f.weight"] = "model-00004-of-00004.safetensors"
            index["weight_map"] = .object(m)
        }
        assertFormatError("\(dir)/model.safetensors.index.json: invalid shard index: shard 'model-00004-of-00004.safetensors' named in weight_map does not exist") {
            _ = try Checkpoint(path: dir)
        }
    }

    func testIndexNamingTheWrongShardForATensor() throws {
        let dir = temporaryDirectory(self)
        var wrong = ""
        _ = try shard(into: dir) { index in
            var m = index["weight_map"]!.objectValue!
            wrong = m.keys.first { m[$0]!.stringValue == "model-00003-of-00003.safetensors" }!
            m[wrong] = "model-00001-of-00003.safetensors"
            index["weight_map"] = .object(m)
        }
        assertFormatError("\(dir)/model.safetensors.index.json: invalid shard index: tensor '\(wrong)' is mapped to shard 'model-00001-of-00003.safetensors' but that shard does not contain it") {
            _ = try Checkpoint(path: dir)
        }
    }

    func testIndexNamingAnAbsentTensor() throws {
        let dir = temporaryDirectory(self)
        _ = try shard(into: dir) { index in
            var m = index["weight_map"]!.objectValue!
            m["backbone.ghost.weight"] = "model-00002-of-00003.safetensors"
            index["weight_map"] = .object(m)
        }
        assertFormatError("\(dir)/model.safetensors.index.json: invalid shard index: tensor 'backbone.ghost.weight' is mapped to shard 'model-00002-of-00003.safetensors' but that shard does not contain it") {
            _ = try Checkpoint(path: dir)
        }
    }

    func testIndexEscapingTheDirectoryAndBrokenIndexes() throws {
        let dir = temporaryDirectory(self)
        _ = try shard(into: dir) { index in
            index["weight_map"] = ["x": "../elsewhere.safetensors"]
        }
        assertFormatError("\(dir)/model.safetensors.index.json: invalid shard index: shard '../elsewhere.safetensors' for 'x' points outside the model directory") {
            _ = try Checkpoint(path: dir)
        }
        _ = try shard(into: dir) { index in index["weight_map"] = nil }
        assertFormatError("\(dir)/model.safetensors.index.json: invalid shard index: missing 'weight_map'") {
            _ = try Checkpoint(path: dir)
        }
    }

    func testShardThatIsCorruptIsNamed() throws {
        let dir = temporaryDirectory(self)
        _ = try shard(into: dir)
        let p = dir + "/model-00002-of-00003.safetensors"
        writeFile(p, Array(readFile(p).dropLast(10)))
        do {
            _ = try Checkpoint(path: dir)
            XCTFail("expected an error")
        } catch let e {
            XCTAssertTrue(e.description.hasPrefix(p + ": tensor '"), e.description)
            let dataSection = readFile(p).count - 8 - headerLength(p)
            XCTAssertTrue(e.description.hasSuffix("past the end of the \(dataSection)-byte data section (truncated file?)"), e.description)
        }
    }

    private func headerLength(_ p: String) -> Int {
        let b = readFile(p)
        return (0..<8).reduce(0) { $0 | Int(b[$1]) << (8 * $1) }
    }

    // MARK: issue 10 §7: tensors the config does not ask for are not dropped silently

    func testTensorsTheConfigDoesNotUseAreRefused() throws {
        let dir = temporaryDirectory(self)
        let zeros = [UInt8](repeating: 0, count: 512)
        _ = try copyFixture(Fixtures.tinyDense, to: dir, extra: [Tensor("backbone.layers.0.mixer.mystery", .bf16, [256], zeros),
                                                       Tensor("mtp.layers.0.enorm.weight", .bf16, [256], zeros)])
        assertFormatError("\(dir): checkpoint does not match config.json: 1 tensor(s) the config does not use, which would be dropped: backbone.layers.0.mixer.mystery (does config.json describe this checkpoint? `inspect` lists them)") {
            _ = try TensorMap(checkpoint: Checkpoint(path: dir))
        }
    }

    func testConvBiasesWithUseConvBiasFalseAreRefused() throws {
        let dir = temporaryDirectory(self)
        _ = try copyFixture(Fixtures.tinyDense, to: dir, editConfig: { $0["use_conv_bias"] = false })
        assertFormatError("\(dir): checkpoint does not match config.json: 6 tensor(s) the config does not use, which would be dropped: backbone.layers.0.mixer.conv1d.bias, backbone.layers.11.mixer.conv1d.bias, backbone.layers.2.mixer.conv1d.bias, backbone.layers.4.mixer.conv1d.bias, backbone.layers.7.mixer.conv1d.bias, backbone.layers.9.mixer.conv1d.bias (does config.json describe this checkpoint? `inspect` lists them)") {
            _ = try TensorMap(checkpoint: Checkpoint(path: dir))
        }
    }

    func testSharedExpertsWithNoneConfiguredAreRefused() throws {
        let dir = temporaryDirectory(self)
        _ = try copyFixture(Fixtures.tinyMoE, to: dir, editConfig: { $0["n_shared_experts"] = 0 })
        assertFormatError("\(dir): checkpoint does not match config.json: 12 tensor(s) the config does not use, which would be dropped: backbone.layers.1.mixer.shared_experts.down_proj.weight, backbone.layers.1.mixer.shared_experts.up_proj.weight, backbone.layers.10.mixer.shared_experts.down_proj.weight, backbone.layers.10.mixer.shared_experts.up_proj.weight, backbone.layers.13.mixer.shared_experts.down_proj.weight, backbone.layers.13.mixer.shared_experts.up_proj.weight, backbone.layers.3.mixer.shared_experts.down_proj.weight, backbone.layers.3.mixer.shared_experts.up_proj.weight, backbone.layers.6.mixer.shared_experts.down_proj.weight, backbone.layers.6.mixer.shared_experts.up_proj.weight, backbone.layers.8.mixer.shared_experts.down_proj.weight, backbone.layers.8.mixer.shared_experts.up_proj.weight (does config.json describe this checkpoint? `inspect` lists them)") {
            _ = try TensorMap(checkpoint: Checkpoint(path: dir))
        }
    }

    func testPatternShorterThanTheCheckpointIsRefused() throws {
        let dir = temporaryDirectory(self)
        _ = try copyFixture(Fixtures.tinyDense, to: dir, editConfig: { $0["hybrid_override_pattern"] = "M-M-M*-M-M-M*"; $0["num_hidden_layers"] = 13 })
        assertFormatError("\(dir): checkpoint does not match config.json: 3 tensor(s) the config does not use, which would be dropped: backbone.layers.13.mixer.down_proj.weight, backbone.layers.13.mixer.up_proj.weight, backbone.layers.13.norm.weight (does config.json describe this checkpoint? `inspect` lists them)") {
            _ = try TensorMap(checkpoint: Checkpoint(path: dir))
        }
    }

    // MARK: issue 10 §6: the work is bounded by what the checkpoint holds

    func testHugeExpertCountStopsAtTheFirstMissingExpert() throws {
        let dir = temporaryDirectory(self)
        _ = try copyFixture(Fixtures.tinyMoE, to: dir, editConfig: { $0["n_routed_experts"] = .int(1 << 24) })
        let start = Date()
        XCTAssertThrowsError(try TensorMap(checkpoint: Checkpoint(path: dir))) { e in
            let m = "\(e)"
            XCTAssertTrue(m.hasPrefix("\(dir): checkpoint does not match config.json: 12 missing tensor(s): backbone.layers.1.mixer.experts.16.up_proj.weight, backbone.layers.1.mixer.experts.16.down_proj.weight (experts 17...16777215 of layer 1 not looked for: config.json says 16777216), backbone.layers.3.mixer.experts.16.up_proj.weight, "), m)
            XCTAssertTrue(m.contains("backbone.layers.1.mixer.gate.weight: shape [16, 256], expected [16777216, 256]"), m)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "names for 2^24 experts must not be built")
    }

    func testExpectedShapeAndCountFollowTheTemplate() throws {
        let c = try Checkpoint(path: Fixtures.tinyMoE).config
        XCTAssertEqual(TensorMap.expectedCount(of: c), 289)
        XCTAssertEqual(TensorMap.expectedShape(of: c, role: .expertUp, layer: 1, expert: 15), [128, 256])
        XCTAssertNil(TensorMap.expectedShape(of: c, role: .expertUp, layer: 1, expert: 16))
        XCTAssertNil(TensorMap.expectedShape(of: c, role: .expertUp, layer: 1, expert: nil))
        XCTAssertNil(TensorMap.expectedShape(of: c, role: .expertUp, layer: 0, expert: 0), "layer 0 is Mamba")
        XCTAssertNil(TensorMap.expectedShape(of: c, role: .layerNorm, layer: 14, expert: nil))
        XCTAssertEqual(TensorMap.expectedShape(of: c, role: .layerNorm, layer: 0, expert: nil), [256])
        for l in 0..<c.layers.count {
            for t in TensorMap.expectedTensors(of: c, layer: l) {
                XCTAssertEqual(TensorMap.expectedShape(of: c, role: t.role, layer: l, expert: t.expert), t.shape)
            }
        }
    }
}
