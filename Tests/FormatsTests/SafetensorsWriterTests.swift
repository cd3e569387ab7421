import Foundation
import XCTest
@testable import Formats
import TestSupport

final class SafetensorsWriterTests: XCTestCase {
    private func sample(seed: UInt64 = 7) -> [Tensor] {
        var rng = SplitMix64(seed: seed)
        func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        return [
            Tensor("embed", .bf16, [3, 5], bytes(30)),
            Tensor("flag", .bool, [3], [1, 0, 1]),          // odd size: later tensors are misaligned
            Tensor("norm", .f32, [5], bytes(20)),
            Tensor("empty", .f16, [0, 4], []),
            Tensor("codes", .f8e4m3, [2, 2], bytes(4)),
            Tensor("ids", .i64, [2], bytes(16)),
            Tensor("scalar", .f64, [], bytes(8)),
        ]
    }

    private func assertMatches(_ path: String, _ tensors: [Tensor], metadata: [String: String] = [:],
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let f = try SafetensorsFile(path: path)
        XCTAssertEqual(f.tensors.map(\.name), tensors.map(\.name), file: file, line: line)
        XCTAssertEqual(f.metadata, metadata, file: file, line: line)
        XCTAssertEqual(f.dataOffset % 8, 0, "data section must start 8-aligned", file: file, line: line)
        for t in tensors {
            let v = try XCTUnwrap(f.view(t.name), file: file, line: line)
            XCTAssertEqual(v.dtype, t.dtype, file: file, line: line)
            XCTAssertEqual(v.shape, t.shape, file: file, line: line)
            XCTAssertEqual(Array(v.bytes), t.bytes, t.name, file: file, line: line)
        }
    }

    func testDeclaredRoundTripWithMetadata() throws {
        let dir = temporaryDirectory(self)
        let t = sample()
        try writeSafetensors(dir + "/a.safetensors", t, metadata: ["format": "pt", "note": "quote \" and \\ and \n"])
        try assertMatches(dir + "/a.safetensors", t, metadata: ["format": "pt", "note": "quote \" and \\ and \n"])
        XCTAssertEqual(directoryListing(dir), ["a.safetensors"], "no temporary files are left behind")
        // Header padding is spaces, as the reference implementation writes it.
        let bytes = readFile(dir + "/a.safetensors")
        let f = try SafetensorsFile(path: dir + "/a.safetensors")
        XCTAssertEqual(bytes[f.dataOffset - 1], UInt8(ascii: " ") , "padding is spaces")
    }

    func testHeaderIsExactlyPaddedToEight() throws {
        let dir = temporaryDirectory(self)
        for extra in 0..<9 {
            let name = "t" + String(repeating: "x", count: extra)
            try writeSafetensors(dir + "/p.safetensors", [Tensor(name, .u8, [1], [42])])
            let bytes = readFile(dir + "/p.safetensors")
            let n = Int(bytes[0]) | Int(bytes[1]) << 8
            XCTAssertEqual((8 + n) % 8, 0)
            let json = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
            let trimmed = json.trimmingCharacters(in: .whitespaces)
            XCTAssertLessThan(json.count - trimmed.count, 8)
            XCTAssertEqual(trimmed, "{\"\(name)\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}")
        }
    }

    func testChunkedStreamingWrites() throws {
        let dir = temporaryDirectory(self)
        let t = sample()
        let w = try SafetensorsWriter(path: dir + "/c.safetensors", tensors: t.map(\.declaration))
        for x in t {
            var i = 0
            while i < x.bytes.count {     // 3-byte chunks straddle element boundaries on purpose
                let j = min(x.bytes.count, i + 3)
                try w.write(x.name, bytes: Array(x.bytes[i..<j]))
                i = j
            }
        }
        XCTAssertEqual(directoryListing(dir).count, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/c.safetensors"), "nothing appears before finish()")
        try w.finish()
        try assertMatches(dir + "/c.safetensors", t)
    }

    func testAppendModeRoundTrip() throws {
        let dir = temporaryDirectory(self)
        let t = sample()
        let w = try SafetensorsWriter(path: dir + "/b.safetensors", metadata: ["k": "v"])
        for x in t { try w.append(x.name, dtype: x.dtype, shape: x.shape, bytes: x.bytes) }
        XCTAssertEqual(directoryListing(dir).count, 2, "output and staging temp files only")
        try w.finish()
        try assertMatches(dir + "/b.safetensors", t, metadata: ["k": "v"])
        XCTAssertEqual(directoryListing(dir), ["b.safetensors"])
        // Same bytes as the declared path.
        try writeSafetensors(dir + "/d.safetensors", t, metadata: ["k": "v"])
        XCTAssertEqual(readFile(dir + "/b.safetensors"), readFile(dir + "/d.safetensors"))
    }

    func testZerosLeaveHolesThatReadAsZero() throws {
        let dir = temporaryDirectory(self)
        let w = try SafetensorsWriter(path: dir + "/z.safetensors", tensors: [
            TensorDeclaration(name: "a", dtype: .f32, shape: [1024]),
            TensorDeclaration(name: "b", dtype: .u8, shape: [3]),
            TensorDeclaration(name: "c", dtype: .bf16, shape: [4096]),
        ])
        try w.writeZeros("a", count: 4096)
        try w.write("b", bytes: [1, 2, 3])
        try w.writeZeros("c", count: 8192)
        try w.finish()
        let f = try SafetensorsFile(path: dir + "/z.safetensors")
        XCTAssertTrue(f.view("a")!.bytes.allSatisfy { $0 == 0 })
        XCTAssertEqual(Array(f.view("b")!.bytes), [1, 2, 3])
        XCTAssertEqual(f.view("c")!.bytes.count, 8192)
        XCTAssertTrue(f.view("c")!.bytes.allSatisfy { $0 == 0 })
    }

    func testOverwritesAnExistingFileAtomically() throws {
        let dir = temporaryDirectory(self)
        writeFile(dir + "/o.safetensors", [1, 2, 3])
        let w = try SafetensorsWriter(path: dir + "/o.safetensors", tensors: [TensorDeclaration(name: "x", dtype: .u8, shape: [2])])
        try w.write("x", bytes: [9])
        XCTAssertEqual(readFile(dir + "/o.safetensors"), [1, 2, 3], "the old file stays until the new one is complete")
        try w.write("x", bytes: [8])
        try w.finish()
        try assertMatches(dir + "/o.safetensors", [Tensor("x", .u8, [2], [9, 8])])
    }

    // MARK: failures leave nothing behind

    func testAbandonedWriterRemovesItsTemporaryFiles() throws {
        let dir = temporaryDirectory(self)
        do {
            let w = try SafetensorsWriter(path: dir + "/x.safetensors", tensors: [TensorDeclaration(name: "a", dtype: .f32, shape: [4])])
            try w.write("a", bytes: [1, 2, 3, 4])
            XCTAssertEqual(directoryListing(dir).count, 1)
        }   // dropped unfinished
        XCTAssertEqual(directoryListing(dir), [])
        let w = try SafetensorsWriter(path: dir + "/y.safetensors")
        try w.append("a", dtype: .u8, shape: [1], bytes: [1])
        XCTAssertEqual(directoryListing(dir).count, 2)
        w.abandon()
        XCTAssertEqual(directoryListing(dir), [])
        XCTAssertThrowsError(try w.finish())
        XCTAssertEqual(directoryListing(dir), [])
    }

    func testUsageErrorsAbandonTheFileAndNameTheTensor() throws {
        let dir = temporaryDirectory(self)
        let p = dir + "/e.safetensors"
        let decl = [TensorDeclaration(name: "a", dtype: .f32, shape: [2]), TensorDeclaration(name: "b", dtype: .u8, shape: [1])]
        func check(_ message: String, line: UInt = #line, _ body: (SafetensorsWriter) throws -> Void) throws {
            let w = try SafetensorsWriter(path: p, tensors: decl)
            assertFormatError("\(p): " + message, line: line) { try body(w) }
            XCTAssertEqual(directoryListing(dir), [], "temporary file removed after the error", line: line)
            XCTAssertThrowsError(try w.finish(), line: line)
        }
        try check("tensor 'b': written out of order: the next tensor in the file is 'a'") { try $0.write("b", bytes: [1]) }
        try check("tensor 'c': was never declared") { try $0.write("c", bytes: [1]) }
        try check("tensor 'a': got 9 bytes but shape [2] of F32 holds 8") { try $0.write("a", bytes: [UInt8](repeating: 0, count: 9)) }
        try check("tensor 'a': only 4 of its 8 bytes were written") { w in
            try w.write("a", bytes: [0, 0, 0, 0]); try w.write("b", bytes: [1])
        }
        try check("tensor 'b': only 0 of its 1 bytes were written") { w in
            try w.write("a", bytes: [UInt8](repeating: 0, count: 8)); try w.finish()
        }
        try check("tensor 'a': all of its bytes were already written") { w in
            try w.write("a", bytes: [UInt8](repeating: 0, count: 8)); try w.write("b", bytes: [1]); try w.write("a", bytes: [1])
        }
        assertFormatError("\(p): tensor 'a': declared more than once") {
            _ = try SafetensorsWriter(path: p, tensors: [decl[0], decl[0]])
        }
        assertFormatError("\(p): tensor '__metadata__': '__metadata__' is reserved for the metadata map") {
            _ = try SafetensorsWriter(path: p, tensors: [TensorDeclaration(name: "__metadata__", dtype: .u8, shape: [1])])
        }
        assertFormatError("\(p): tensor 'n': shape [-1] is negative or too large") {
            _ = try SafetensorsWriter(path: p, tensors: [TensorDeclaration(name: "n", dtype: .u8, shape: [-1])])
        }
        let w = try SafetensorsWriter(path: p, tensors: decl)
        assertFormatError("\(p): tensor 'z': cannot add a tensor to a writer whose tensors were declared up front") {
            try w.begin(TensorDeclaration(name: "z", dtype: .u8, shape: [1]))
        }
        XCTAssertEqual(directoryListing(dir), [])
    }

    func testMissingDirectoryIsAnIOError() {
        assertFormatError("/nonexistent-dir-for-test/x.safetensors: cannot create a temporary file in /nonexistent-dir-for-test: No such file or directory") {
            _ = try SafetensorsWriter(path: "/nonexistent-dir-for-test/x.safetensors", tensors: [])
        }
    }

    // MARK: the reference implementation

    func testPythonSafetensorsReadsOurFilesAndWeReadItsFiles() throws {
        guard pythonSafetensors.ok else { throw XCTSkip(pythonSafetensors.why) }
        let dir = temporaryDirectory(self)
        let t = sample()
        try writeSafetensors(dir + "/ours.safetensors", t, metadata: ["format": "pt"])
        // deserialize() gives raw bytes for every dtype (numpy has no bfloat16 or float8).
        let script = """
        import sys, json
        from safetensors import deserialize, safe_open
        path = sys.argv[1]
        out = {}
        for name, t in deserialize(open(path, 'rb').read()):
            out[name] = [t['dtype'], list(t['shape']), bytes(t['data']).hex()]
        with safe_open(path, 'np') as f:
            meta = f.metadata()
        print(json.dumps({'tensors': out, 'metadata': meta}, sort_keys=True))
        """
        let got = try JSONParser.parse(runPython(script, args: [dir + "/ours.safetensors"]))
        XCTAssertEqual(got["metadata"], ["format": "pt"])
        let tensors = try XCTUnwrap(got["tensors"]?.objectValue)
        XCTAssertEqual(Set(tensors.keys), Set(t.map(\.name)))
        for x in t {
            let entry = try XCTUnwrap(tensors[x.name]?.arrayValue)
            XCTAssertEqual(entry[0].stringValue, x.dtype.rawValue)
            XCTAssertEqual(entry[1].arrayValue?.compactMap(\.intValue), x.shape)
            XCTAssertEqual(entry[2].stringValue, x.bytes.map { String(format: "%02x", $0) }.joined(), x.name)
        }

        let write = """
        import sys, numpy as np
        from safetensors.numpy import save_file
        save_file({
            'f16': np.array([[1, -2.5], [65504, 0.125]], dtype=np.float16),
            'f32': np.arange(7, dtype=np.float32) / 4,
            'f64': np.array([1e-300, -3.0]),
            'i32': np.array([-7, 9], dtype=np.int32),
            'u8': np.array([1, 2, 3], dtype=np.uint8),
            'b': np.array([True, False, True]),
        }, sys.argv[1], metadata={'origin': 'numpy'})
        """
        _ = try runPython(write, args: [dir + "/theirs.safetensors"])
        let f = try SafetensorsFile(path: dir + "/theirs.safetensors")
        XCTAssertEqual(f.metadata, ["origin": "numpy"])
        XCTAssertEqual(try f.view("f16")!.floats(), [1, -2.5, 65504, 0.125])
        XCTAssertEqual(f.view("f16")!.shape, [2, 2])
        XCTAssertEqual(try f.view("f32")!.floats(), (0..<7).map { Float($0) / 4 })
        XCTAssertEqual(try f.view("f64")!.floats(), [Float(1e-300), -3])
        XCTAssertEqual(f.view("i32")!.dtype, .i32)
        XCTAssertEqual(Array(f.view("u8")!.bytes), [1, 2, 3])
        XCTAssertEqual(Array(f.view("b")!.bytes), [1, 0, 1])
        XCTAssertEqual(f.view("b")!.dtype, .bool)
    }
}

