import XCTest
import Calibrate
import Formats
import Model
import Quantize
import Tokenizer
import TestSupport

/// Deterministic mutation fuzzing of every reader that takes a file a user downloaded or was sent
/// (issue 10, "keep it from coming back"): packed files (structure-aware — header edits with the
/// checksum recomputed, so every integrity check passes), statistics files, recipes and
/// tokenizer.json. Safetensors, config.json and shard indexes are fuzzed in FormatsTests.
///
/// Each input must either be accepted and then be readable in full, or be refused with the error
/// type of its reader naming the file — never crash, trap or hang. The run is short in CI;
/// `NEMO_FUZZ_SCALE=50 bash scripts/fuzz.sh` runs fifty times as many cases. With
/// `NEMO_FUZZ_SAVE=DIR` every case is written to `DIR/<reader>.last` before it runs, so the input
/// of a crash survives it; scripts/fuzz.sh copies it into `FuzzCorpus/<reader>/`, whose files are
/// replayed by every run from then on.
final class ReaderFuzzTests: XCTestCase {
    static let scale = max(1, Int(ProcessInfo.processInfo.environment["NEMO_FUZZ_SCALE"] ?? "") ?? 1)
    static let saveDir = ProcessInfo.processInfo.environment["NEMO_FUZZ_SAVE"]
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("FuzzCorpus").path

    static func corpusFiles(_ reader: String) -> [String] {
        let dir = corpus + "/" + reader
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { dir + "/" + $0 }
    }

    static func save(_ reader: String, _ bytes: [UInt8]) {
        guard let d = saveDir else { return }
        FileManager.default.createFile(atPath: d + "/" + reader + ".last", contents: Data(bytes))
    }

    static let interesting: [UInt8] = Array("{}[]\",:-0123456789eE.\\ ntfuI*?+()|".utf8) + [0x00, 0xFF, 0x80]

    /// Byte-level mutations for text formats: replace, insert or delete a byte, truncate, append.
    static func mutateText(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            guard !b.isEmpty else { break }
            let i = Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<8, using: &rng) {
            case 0, 1, 2: b[i] = interesting.randomElement(using: &rng)!
            case 3: b.insert(interesting.randomElement(using: &rng)!, at: i)
            case 4: b.remove(at: i)
            case 5: b.removeLast(Int.random(in: 0...min(b.count, 16), using: &rng))
            case 6: b[i] = UInt8.random(in: 0...255, using: &rng)
            default:  // duplicate a run (grows numbers, nests brackets)
                let n = Int.random(in: 1...min(8, b.count - i), using: &rng)
                b.insert(contentsOf: b[i..<(i + n)], at: i)
            }
        }
        return b
    }

    /// Structure-aware mutations for JSON formats: one to three value edits (numbers to their
    /// edges, strings to others of the same file, keys removed, arrays emptied or grown, values
    /// swapped), so most cases parse and reach the reader's own checks.
    static func mutateJSON(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        guard var v = try? JSONParser.parse(input) else { return input }
        var all: [([Step], JSONValue)] = []
        paths(v, into: &all)
        let strings = Array(Set(all.compactMap { $0.1.stringValue })).sorted() + ["", "x", "(a|a)*b", "int4-g0-sym", "Ġ"]
        for _ in 0..<Int.random(in: 1...3, using: &rng) { apply(randomEdit(all, strings: strings, &rng), to: &v) }
        return JSONWriter.bytes(v)
    }

    // MARK: packed files

    /// The int4 pack of the tiny MoE fixture, made once.
    static let pack: [UInt8] = {
        let dir = NSTemporaryDirectory() + "nemo-fuzz-\(getpid())"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = Fixtures.model("nemotron-h-tiny-moe")
        let ck = try! Checkpoint(path: model)
        _ = try! Converter(map: try! TensorMap(checkpoint: ck), recipe: try! Recipe.load("int4"))
            .convert(to: dir + "/moe.nemo", metadata: ["model": try! JSONParser.parse(ck.configBytes)],
                     blobs: [("tokenizer.json", try! MappedFile.contents(of: model + "/tokenizer.json"))])
        return try! MappedFile.contents(of: dir + "/moe.nemo")
    }()

    /// A step on the way to a value inside the header.
    enum Step: Equatable { case key(String), index(Int) }

    /// One header edit: the value at `path` replaced by `value`, or removed when `value` is nil.
    struct Edit {
        var path: [Step]
        var value: JSONValue?

        var json: JSONValue {
            var o: JSONObject = ["path": .array(path.map { if case .key(let k) = $0 { return .string(k) } else if case .index(let i) = $0 { return .int(i) }; return .null })]
            if let v = value { o["value"] = v } else { o["remove"] = .bool(true) }
            return .object(o)
        }

        init(path: [Step], value: JSONValue?) { self.path = path; self.value = value }

        /// An edit as a corpus file spells it: `{"path": ["tensors", 3, "shape", 0], "value": 512}`
        /// or `{"path": [...], "remove": true}`.
        init(json: JSONValue) {
            path = (json["path"]?.arrayValue ?? []).map { $0.intValue.map(Step.index) ?? .key($0.stringValue ?? "") }
            value = json["remove"]?.boolValue == true ? nil : json["value"]
        }
    }

    static func apply(_ e: Edit, to v: inout JSONValue, at depth: Int = 0) {
        guard depth < e.path.count else { if let nv = e.value { v = nv }; return }
        let last = depth == e.path.count - 1
        switch (e.path[depth], v) {
        case (.key(let k), .object(var o)):
            if last && e.value == nil { o[k] = nil } else if var child = o[k] ?? (last ? .null : nil) {
                apply(e, to: &child, at: depth + 1); o[k] = child
            }
            v = .object(o)
        case (.index(let i), .array(var a)) where i >= 0 && i < a.count:
            if last && e.value == nil { a.remove(at: i) } else { apply(e, to: &a[i], at: depth + 1) }
            v = .array(a)
        default: break
        }
    }

    /// Every path in `v`, with the value found there.
    static func paths(_ v: JSONValue, _ prefix: [Step] = [], into out: inout [([Step], JSONValue)]) {
        out.append((prefix, v))
        if let o = v.objectValue { for (k, c) in o { paths(c, prefix + [.key(k)], into: &out) } }
        if let a = v.arrayValue { for (i, c) in a.enumerated() { paths(c, prefix + [.index(i)], into: &out) } }
    }

    static func randomEdit(_ all: [([Step], JSONValue)], strings: [String], _ rng: inout SplitMix64) -> Edit {
        let (path, v) = all.randomElement(using: &rng)!
        if Int.random(in: 0..<8, using: &rng) == 0 && !path.isEmpty { return Edit(path: path, value: nil) }
        if Int.random(in: 0..<6, using: &rng) == 0 {  // another value of the header: swapped roles, shapes, sections
            return Edit(path: path, value: all.randomElement(using: &rng)!.1)
        }
        switch v {
        case .number(let d) where d == d.rounded() && abs(d) < 1e15:
            let n = Int(d)
            let choices: [Int] = [0, -1, 1, n + 1, n - 1, n * 2, n / 2, 127, 1 << 31, 1 << 40, Int.max, Int.min]
            return Edit(path: path, value: .int(choices.randomElement(using: &rng)!))
        case .number: return Edit(path: path, value: .number([0, -1, 1e300, -0.0].randomElement(using: &rng)!))
        case .string: return Edit(path: path, value: .string(strings.randomElement(using: &rng)!))
        case .bool(let b): return Edit(path: path, value: .bool(!b))
        case .array(let a) where !a.isEmpty:
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: return Edit(path: path + [.index(Int.random(in: 0..<a.count, using: &rng))], value: nil)
            case 1: return Edit(path: path, value: .array(a + [a.randomElement(using: &rng)!]))
            default: return Edit(path: path, value: .array([]))
            }
        default: return Edit(path: path, value: .int(Int.random(in: -2...4096, using: &rng)))
        }
    }

    /// Opens a packed file from memory through every reader and, if it is accepted, reads every
    /// tensor, blob and checksum. Returns the error, if any.
    static func exercisePacked(_ bytes: [UInt8]) -> Error? {
        do {
            let file = try PackedFile(file: MappedFile(path: "fuzz.nemo", contents: bytes))
            let weights = try PackedWeights(file: file)
            _ = try PackedInspection(file: file)
            try file.verify()
            _ = try file.blob("tokenizer.json")
            for t in file.tensors {
                let plan = try TensorPlan(packed: t, file: file.path)
                let out = UnsafeMutablePointer<Float>.allocate(capacity: max(1, plan.rows * plan.cols))
                defer { out.deallocate() }
                try weights.load(t.role, layer: t.layer, expert: t.expert, into: out)
            }
            return nil
        } catch { return error }
    }

    func assertPackedOutcome(_ error: Error?, _ what: String) {
        guard let e = error else { return }
        XCTAssertTrue(e is FormatError, "\(what): \(type(of: e)): \(e)")
        XCTAssertTrue("\(e)".hasPrefix("fuzz.nemo: ") || "\(e)".hasPrefix("fuzz.nemo (embedded config.json): "), "\(what): \(e)")
    }

    func testMutatedPackedHeadersAreReadInFullOrRefusedByName() throws {
        let original = Self.pack
        let (header, _) = try PackedHeaderEdit.header(of: original)
        var all: [([Step], JSONValue)] = []
        Self.paths(.object(header), into: &all)
        let strings = Array(Set(all.compactMap { $0.1.stringValue }.filter { $0.count < 64 })).sorted() + ["", "x", "f16", "int4-g1-asym"]
        XCTAssertNil(Self.exercisePacked(original), "the unedited pack must read")

        for file in Self.corpusFiles("packed") {
            let edits = try XCTUnwrap(try JSONParser.parse(MappedFile.contents(of: file)).arrayValue, file).map(Edit.init(json:))
            let bytes = try PackedHeaderEdit.rewrite(original) { h in
                var v = JSONValue.object(h); for e in edits { Self.apply(e, to: &v) }; h = v.objectValue!
            }
            let e = Self.exercisePacked(bytes)
            XCTAssertNotNil(e, "corpus case \(file) must be refused")
            assertPackedOutcome(e, file)
        }

        var rng = SplitMix64(seed: 0xFACC)
        var refused = 0
        let cases = 300 * Self.scale
        for i in 0..<cases {
            let edits = (0..<Int.random(in: 1...3, using: &rng)).map { _ in Self.randomEdit(all, strings: strings, &rng) }
            let flags = Int.random(in: 0..<20, using: &rng) == 0 ? UInt8.random(in: 1...255, using: &rng) : 0
            let flagAt = Int.random(in: 12..<16, using: &rng)
            Self.save("packed", JSONWriter.bytes(.array(edits.map(\.json))))
            let bytes = try PackedHeaderEdit.rewrite(original, preamble: { if flags != 0 { $0[flagAt] = flags } }) { h in
                var v = JSONValue.object(h); for e in edits { Self.apply(e, to: &v) }; h = v.objectValue ?? h
            }
            let e = Self.exercisePacked(bytes)
            if e != nil { refused += 1 }
            assertPackedOutcome(e, "case \(i): \(JSONWriter.string(.array(edits.map(\.json))))")
        }
        XCTAssertGreaterThan(refused, cases / 2, "most header edits change what the file claims")
    }

    // MARK: statistics files

    /// A statistics file of the tiny MoE fixture's shape without Gram matrices (kilobytes, not the
    /// 42 MB a GPTQ run saves), with plausible values.
    static let statsFile: [UInt8] = {
        let map = try! TensorMap(checkpoint: Checkpoint(path: Fixtures.model("nemotron-h-tiny-moe")))
        let stats = CalibrationStats()
        var rng = SplitMix64(seed: 7)
        for t in map.tensors where t.role.isLinear && t.role != .embedding {
            let w = t.data.shape.last!
            stats.set(StatsKey(t.role, layer: t.layer, expert: t.expert),
                      LinearStats(width: w, rows: 64, sumSquares: (0..<w).map { _ in Double.random(in: 0...9, using: &rng) },
                                  absMax: (0..<w).map { _ in Float.random(in: 0...3, using: &rng) }, gram: nil))
        }
        for (l, k) in map.config.layers.enumerated() where k == .moe {
            stats.setRouting(layer: l, counts: (0..<map.config.moe!.experts).map { _ in Int.random(in: 0...100, using: &rng) })
        }
        let path = NSTemporaryDirectory() + "nemo-fuzz-stats-\(getpid()).safetensors"
        defer { unlink(path) }
        let w = try! StatsFileWriter(path: path, modelType: map.config.modelType, contextLength: 256)
        try! w.write(stats)
        try! w.finish(tokens: 64)
        return try! MappedFile.contents(of: path)
    }()

    /// Safetensors-aware mutations: header bytes, the length field, data bytes, truncation.
    static func mutateSafetensors(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        let headerEnd = b.count >= 8 ? min(b.count, 8 + (Int(b[0]) | Int(b[1]) << 8 | Int(b[2]) << 16)) : b.count
        switch Int.random(in: 0..<6, using: &rng) {
        case 0, 1, 2 where headerEnd > 8:
            let i = Int.random(in: 8..<headerEnd, using: &rng)
            b[i] = interesting.randomElement(using: &rng)!
        case 3 where b.count > 8: b[Int.random(in: 0..<8, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
        case 4: b.removeLast(Int.random(in: 0...b.count, using: &rng))
        default:
            // A data byte: counts become negative or huge, statistics NaN or negative.
            if b.count > headerEnd { b[Int.random(in: headerEnd..<b.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng) }
        }
        return b
    }

    func testMutatedStatisticsFilesAreCheckedOrRefusedByName() throws {
        let map = try TensorMap(checkpoint: Checkpoint(path: Fixtures.model("nemotron-h-tiny-moe")))
        func run(_ bytes: [UInt8], _ what: String) -> Bool {
            do {
                let f = try SafetensorsFile(file: MappedFile(path: "fuzz.stats", contents: bytes))
                let s = try StatsFile.load(f, config: map.config)
                try StatsFile.check(s, against: map, file: "fuzz.stats")
                return true
            } catch {
                XCTAssertTrue(error is FormatError, "\(what): \(type(of: error)): \(error)")
                XCTAssertTrue("\(error)".hasPrefix("fuzz.stats: "), "\(what): \(error)")
                if what == "unmutated" { XCTFail("\(error)") }
                return false
            }
        }
        XCTAssertTrue(run(Self.statsFile, "unmutated"))
        for file in Self.corpusFiles("stats") { _ = run(try MappedFile.contents(of: file), file) }
        var rng = SplitMix64(seed: 0x57A7)
        var refused = 0
        let cases = 1500 * Self.scale
        for i in 0..<cases {
            let b = (0..<Int.random(in: 1...3, using: &rng)).reduce(Self.statsFile) { m, _ in Self.mutateSafetensors(m, &rng) }
            Self.save("stats", b)
            if !run(b, "case \(i)") { refused += 1 }
        }
        XCTAssertGreaterThan(refused, cases / 3)
    }

    // MARK: recipes

    static let recipe = Array("""
    {"name": "fuzz", "description": "every key", "default": "int4-g64-asym", "per_head_scales": true,
     "out_proj_group_by_head": false,
     "rules": [{"role": "attn_q", "scheme": "bf16"}, {"name": "backbone.layers.1*", "scheme": "int8"},
               {"layers": [0, 3], "scheme": "fp8-channel"}, {"role": "mamba_in_proj", "segment": "dt", "scheme": "keep"},
               {"role": "expert_up", "scheme": "fp8-tensor"}]}
    """.utf8)

    func testMutatedRecipesPlanOrAreRefusedByName() throws {
        let map = try TensorMap(checkpoint: Checkpoint(path: Fixtures.model("nemotron-h-tiny-moe")))
        func run(_ bytes: [UInt8], _ what: String) -> Bool {
            guard let json = try? JSONParser.parse(bytes) else { return false }
            do {
                let r = try Recipe(json: json, file: "fuzz.json")
                let plans = try Converter(map: map, recipe: r).plans()
                XCTAssertEqual(plans.count, map.tensors.count, what)
                return true
            } catch {
                XCTAssertTrue(error is RecipeError || error is FormatError, "\(what): \(type(of: error)): \(error)")
                XCTAssertTrue("\(error)".contains("fuzz"), "\(what): \(error)")
                return false
            }
        }
        XCTAssertTrue(run(Self.recipe, "unmutated"))
        for file in Self.corpusFiles("recipe") { _ = run(try MappedFile.contents(of: file), file) }
        var rng = SplitMix64(seed: 0x4EC1)
        var accepted = 0
        for i in 0..<(1500 * Self.scale) {
            let b = i % 2 == 0 ? Self.mutateText(Self.recipe, &rng) : Self.mutateJSON(Self.recipe, &rng)
            Self.save("recipe", b)
            if run(b, "case \(i): \(String(decoding: b, as: UTF8.self))") { accepted += 1 }
        }
        XCTAssertGreaterThan(accepted, 20 * Self.scale, "some mutations keep a valid recipe")
    }

    // MARK: tokenizer.json

    /// A small byte-level BPE with every feature the reader supports in use: added tokens, a
    /// regex Split, ByteLevel, a template post-processor.
    static let tokenizer = Array(#"""
    {"version": "1.0", "truncation": null, "padding": null,
     "added_tokens": [{"id": 9, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
     "normalizer": null,
     "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(?:'s|\\s+(?!\\S)|\\p{L}+|\\p{N})"}, "behavior": "Isolated", "invert": false},
        {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
     "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"<s>": {"id": "<s>", "ids": [9], "tokens": ["<s>"]}}},
     "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
     "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
               "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
               "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "Ġ": 4, "he": 5, "ll": 6, "hell": 7, "hello": 8, "<s>": 9},
               "merges": ["h e", "l l", "he ll", "hell o"]}}
    """#.utf8)

    func testMutatedTokenizersEncodeOrAreRefusedByName() throws {
        func run(_ bytes: [UInt8], _ what: String) -> Bool {
            do {
                let t = try Tokenizer(json: bytes)
                for text in ["hello hello", "aaaaaaaaaaaaaaaaaaaaaaaa!", "", "héllo 12 's"] {
                    let ids = try t.encode(text, addSpecialTokens: true)
                    _ = t.decode(ids)
                }
                return true
            } catch {
                XCTAssertTrue(error is TokenizerError, "\(what): \(type(of: error)): \(error)")
                XCTAssertTrue("\(error)".hasPrefix("tokenizer.json: "), "\(what): \(error)")
                return false
            }
        }
        XCTAssertTrue(run(Self.tokenizer, "unmutated"))
        for file in Self.corpusFiles("tokenizer") { _ = run(try MappedFile.contents(of: file), file) }
        var rng = SplitMix64(seed: 0x70CE)
        var accepted = 0
        for i in 0..<(1500 * Self.scale) {
            let b = i % 2 == 0 ? Self.mutateText(Self.tokenizer, &rng) : Self.mutateJSON(Self.tokenizer, &rng)
            Self.save("tokenizer", b)
            if run(b, "case \(i)") { accepted += 1 }
        }
        XCTAssertGreaterThan(accepted, 50, "some mutations keep a valid tokenizer")
    }
}

