import XCTest
import Formats
import Quantize
import TestSupport

/// The GGUF sink on its own: the layout it declares, the refusals it makes while writing.
final class GGUFWriterTests: ScratchDirectoryTestCase {
    func placement(_ t: SinkTensor) throws(FormatError) -> GGUFPlacement {
        GGUFPlacement(name: t.name, dims: t.shape.reversed())
    }

    func q4_0Row(_ w: [Float]) -> [UInt8] {
        let codec = Q4_0Block()
        var codes = [UInt8](repeating: 0, count: codec.codeBytesPerRow(cols: w.count))
        w.withUnsafeBufferPointer { wp in
            codes.withUnsafeMutableBytes { cp in
                codec.encode(wp.baseAddress!, cols: w.count, rows: 0..<1, rowScale: 1, codes: cp.baseAddress!, scales: nil, zeroPoints: nil)
            }
        }
        return codes
    }

    /// Regression: q4_0's FP16 block scale d = max / −8 overflows half for |w| > 8 · 65504 ≈ 5.2e5,
    /// and the blocks were written with d = −inf (every weight then decodes to ±inf or NaN).
    /// The writer refuses them, naming the tensor, and leaves no file.
    func testNonFiniteBlockScalesAreRefused() throws {
        let path = dir + "/x.gguf"
        let t = SinkTensor(name: "w", role: .mlpUp, layer: 0, expert: nil, shape: [1, 32], scheme: "q4_0",
                           segments: [("", "q4_0")], sourceDType: .f32)
        var big = [Float](repeating: 0.5, count: 32)
        big[7] = 1e6
        let sink = try GGUFWriter(path: path, metadata: [], placement: placement)
        try sink.prepare([t])
        try sink.beginTensor(t)
        try sink.beginSection("codes", encoding: .raw)
        let row = q4_0Row(big)
        XCTAssertEqual(row[1] & 0x7C, 0x7C, "the encoder's half scale is inf (what this test is about)")
        XCTAssertThrowsError(try row.withUnsafeBytes { try sink.appendToSection($0) }) { e in
            XCTAssertEqual("\(e)", "\(path): tensor 'w': block 0 of this piece has a non-finite FP16 scale (weights too large for q4_0); keep the tensor in f32/bf16")
        }
        sink.discard()
        XCTAssertEqual(listing(), [])
        // 1e5 still fits: d = −12500.
        let ok = try GGUFWriter(path: path, metadata: [], placement: placement)
        try ok.prepare([t])
        try ok.beginTensor(t)
        big[7] = 1e5
        try q4_0Row(big).withUnsafeBytes { try ok.writeSection("codes", $0) }
        XCTAssertEqual(try ok.endTensor(attributes: [:]), 18)
        try ok.finish(metadata: [:])
        let f = try GGUFFile(path: path)
        XCTAssertEqual(f.tensors.map(\.name), ["w"])
        XCTAssertEqual(f.tensors[0].type, .q4_0)
    }

    /// Experts arrive one by one, interleaved (up 0, down 0, up 1, …); each lands in its slot of
    /// the stacked tensor, and a slot never written is an error at finish, not a file of zeros.
    func testStackedSlotsAndMissingSlots() throws {
        let path = dir + "/s.gguf"
        func expert(_ k: Int) -> SinkTensor {
            SinkTensor(name: "e\(k)", role: .expertUp, layer: 0, expert: k, shape: [2, 4], scheme: "f32", segments: [("", "f32")], sourceDType: .f32)
        }
        let place: (SinkTensor) throws(FormatError) -> GGUFPlacement = { t throws(FormatError) in
            GGUFPlacement(name: "exps", dims: [4, 2, 3], slot: t.expert!, slots: 3)
        }
        let sink = try GGUFWriter(path: path, metadata: [("a", .u32(1))], placement: place)
        try sink.prepare((0..<3).map(expert))
        for k in [2, 0, 1] {
            try sink.beginTensor(expert(k))
            let v = (0..<8).map { Float(k * 100 + $0) }
            try v.withUnsafeBytes { try sink.writeSection("codes", $0) }
            try sink.endTensor(attributes: [:])
        }
        try sink.finish(metadata: [:])
        let f = try GGUFFile(path: path)
        let t = try XCTUnwrap(f.tensor("exps"))
        XCTAssertEqual(t.dims, [4, 2, 3])
        let vals = f.view(t)!.floats
        XCTAssertEqual(try vals(), (0..<3).flatMap { k in (0..<8).map { Float(k * 100 + $0) } })

        let partial = try GGUFWriter(path: dir + "/p.gguf", metadata: [], placement: place)
        try partial.prepare((0..<3).map(expert))
        try partial.beginTensor(expert(0))
        try [Float](repeating: 1, count: 8).withUnsafeBytes { try partial.writeSection("codes", $0) }
        try partial.endTensor(attributes: [:])
        XCTAssertThrowsError(try partial.finish(metadata: [:])) { e in
            XCTAssertEqual("\(e)", "\(dir)/p.gguf: GGUF tensor exps slot 1 was never written")
        }
        partial.discard()
        XCTAssertEqual(listing(), ["s.gguf"])
    }

    /// Q and K rows are stored permuted per head (llama.cpp's layout) but read back in the
    /// converter's order: sequential calibration runs the next layer on what was written.
    func testPermutedRowsAreStoredPermutedAndReadBackInOrder() throws {
        let path = dir + "/q.gguf"
        let t = SinkTensor(name: "q", role: .attnQ, layer: 0, expert: nil, shape: [8, 2], scheme: "f32",
                           segments: [("", "f32")], sourceDType: .f32)
        let place: (SinkTensor) throws(FormatError) -> GGUFPlacement = { t throws(FormatError) in
            GGUFPlacement(name: "attn_q", dims: [2, 8], permutedHeads: 2)
        }
        let sink = try GGUFWriter(path: path, metadata: [], placement: place)
        try sink.prepare([t])
        try sink.beginTensor(t)
        let rows = (0..<16).map { Float($0) }   // row r = [2r, 2r+1]
        try sink.beginSection("codes", encoding: .raw)
        try rows[0..<8].withUnsafeBytes { try sink.appendToSection($0) }   // two pieces of whole rows
        try rows[8..<16].withUnsafeBytes { try sink.appendToSection($0) }
        try sink.endSection()
        try sink.endTensor(attributes: [:])
        let back = try XCTUnwrap(sink.readBack(tensor: "q", section: "codes"))
        XCTAssertEqual(back, rows.withUnsafeBytes { Array($0) })
        try sink.finish(metadata: [:])
        let f = try GGUFFile(path: path)
        let stored = try f.view(f.tensor("attn_q")!)!.floats()
        // Head of 4 rows [r0 r1 r2 r3] stored [r0 r2 r1 r3].
        XCTAssertEqual(stored, [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15])
    }
}
