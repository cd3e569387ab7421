import XCTest
import Formats
import Quantize
import TestSupport

/// Issue 11 §4: the converter writes through `TensorSink`, checks the plan against the sink's
/// rules before writing, and leaves nothing behind when it refuses.
final class TensorSinkTests: ScratchDirectoryTestCase {
    /// Keeps every tensor's sections in memory; its rules are whatever a test gives it.
    final class MemorySink: TensorSink {
        let path = "memory"
        var rules: SinkRules
        var tensors: [(SinkTensor, [String: [UInt8]], JSONObject)] = []
        private var open: (SinkTensor, [String: [UInt8]])?
        private var section: (String, [UInt8])?
        var finished = false, discarded = false
        init(rules: SinkRules) { self.rules = rules }
        func beginTensor(_ t: SinkTensor) throws(FormatError) { open = (t, [:]) }
        func beginSection(_ name: String, encoding: SectionEncoding) throws(FormatError) { section = (name, []) }
        func appendToSection(_ bytes: UnsafeRawBufferPointer) throws(FormatError) { section!.1 += bytes }
        func endSection() throws(FormatError) { open!.1[section!.0] = section!.1; section = nil }
        func endTensor(attributes: JSONObject) throws(FormatError) -> Int {
            tensors.append((open!.0, open!.1, attributes)); defer { open = nil }
            return open!.1.values.reduce(0) { $0 + $1.count }
        }
        func readBack(tensor: String, section: String) throws(FormatError) -> [UInt8]? {
            tensors.first { $0.0.name == tensor }?.1[section]
        }
        func addBlob(_ name: String, _ bytes: [UInt8]) throws(FormatError) {}
        func finish(metadata: JSONObject) throws(FormatError) { finished = true }
        func discard() { discarded = true }
        var fileSize: Int { 0 }
        var compressedBytesSaved: Int { 0 }
    }

    var map: TensorMap { get throws { try TensorMap(checkpoint: try Checkpoint(path: Fixtures.tinyMoE)) } }

    /// Any sink receives exactly the sections a packed file stores, and the same attributes.
    func testConverterWritesTheSameSectionsToAnySink() throws {
        let recipe = Recipe.builtin(.int4)
        let sink = MemorySink(rules: .anything)
        _ = try Converter(map: try map, recipe: recipe).convert(into: sink, metadata: [:], blobs: [])
        XCTAssertTrue(sink.finished)
        let out = dir + "/o.nemo"
        _ = try Converter(map: try map, recipe: recipe).convert(to: out, metadata: ["model": try JSONParser.parse(try MappedFile.contents(of: Fixtures.tinyMoE + "/config.json"))], blobs: [])
        let pack = try PackedFile(path: out)
        XCTAssertEqual(sink.tensors.map(\.0.name), pack.tensors.map(\.name))
        for (t, sections, attrs) in sink.tensors {
            let p = try XCTUnwrap(pack.tensor(t.name))
            XCTAssertEqual(Set(sections.keys), Set(p.sections.keys), t.name)
            XCTAssertEqual(t.scheme, p.scheme)
            XCTAssertEqual(attrs["source_xxh64"], p.attributes["source_xxh64"], t.name)
            for (k, s) in p.sections where s.encoding == .raw {
                XCTAssertEqual(sections[k], try pack.bytes(s, owner: k), "\(t.name) \(k)")
            }
        }
    }

    /// A plan a sink cannot store fails before anything is written, naming every offender and why.
    func testPlanIsCheckedAgainstTheSinkBeforeWriting() throws {
        let rules = SinkRules(format: "test format", schemes: ["int8", "bf16", "f32"], mixedSchemesPerTensor: false, scaleElements: ["f32"])
        let conv = Converter(map: try map, recipe: Recipe.builtin(.int4))
        let v = SinkCheck.violations(try conv.plans(), rules: rules)
        XCTAssertEqual(v.first { $0.hasPrefix("backbone.layers.0.mixer.in_proj.weight") },
                       "backbone.layers.0.mixer.in_proj.weight: mixes schemes across its rows (z: int4-g128-sym, x: int4-g128-sym, B: int4-g128-sym, C: int4-g128-sym, dt: bf16); "
                       + "a test format stores one per tensor; scheme int4-g128-sym is not one a test format stores (bf16, f32, int8)")
        XCTAssertEqual(v.first { $0.hasPrefix("backbone.layers.1.mixer.experts.0.up_proj.weight") },
                       "backbone.layers.1.mixer.experts.0.up_proj.weight: scheme int4-g128-sym is not one a test format stores (bf16, f32, int8)")
        XCTAssertFalse(v.contains { $0.hasPrefix("backbone.embeddings.weight") }, "bf16 fits")
        let fp4 = SinkCheck.violations(try Converter(map: try map, recipe: Recipe.builtin(.mxfp4)).plans(),
                                       rules: SinkRules(format: "f16-scale format", scaleElements: ["f16"]))
        XCTAssertTrue(fp4.contains("backbone.layers.1.mixer.experts.0.up_proj.weight: scheme mxfp4 has e8m0 scales; a f16-scale format stores f16 scales"), "\(fp4.prefix(3))")

        let sink = MemorySink(rules: rules)
        XCTAssertThrowsError(try conv.convert(into: sink, metadata: [:], blobs: [])) { e in
            XCTAssertTrue(e is SinkMismatch, "\(e)")
            XCTAssertTrue("\(e)".hasPrefix("the plan does not fit a test format ("), "\(e)")
        }
        XCTAssertTrue(sink.tensors.isEmpty, "nothing written")
        XCTAssertTrue(sink.discarded)
        XCTAssertFalse(sink.finished)
    }
}
