import Foundation
import XCTest
import Formats
@testable import Quantize
import TestSupport

/// Our ggml codecs against gguf-py, the `gguf` package on PyPI that llama.cpp's converters use:
/// - every encodable type: gguf-py's `dequantize` of the bytes we wrote equals our decode bit for
///   bit, and where gguf-py can quantize (`quantize`: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, MXFP4; not
///   IQ4_NL) its bytes for the same Float32 input equal ours byte for byte;
/// - every decode-only type (the k-quants and i-quants): random blocks with finite scales,
///   dequantized by gguf-py, equal ours bit for bit.
/// Run with gguf 0.19.0 and numpy 2.4 (what `.ci/run` pins). Skipped, saying so, when python3 or
/// the package is missing.
final class GGUFCrossCheckTests: XCTestCase {
    /// The gguf version these tests were written against; another one is reported, not refused.
    static let pinned = "0.19.0"

    static let probe: (version: String?, why: String) = {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import numpy, gguf, importlib.metadata as m; print(m.version('gguf'))"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return (nil, "skipped: python3 could not be started (\(error))") }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        switch p.terminationStatus {
        case 0: return (String(decoding: o, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), "")
        case 127: return (nil, "skipped: python3 is not installed")
        default: return (nil, "skipped: python3 cannot import gguf and numpy (pip install gguf==\(pinned) numpy)")
        }
    }()

    /// Reads a manifest of `kind type rows cols stem` lines; for `enc` lines quantizes
    /// stem.in.f32 into stem.py.bin where gguf-py can; for every line dequantizes stem.bin into
    /// stem.py.f32.
    static let script = #"""
import sys, numpy as np, importlib.metadata
from gguf import GGMLQuantizationType as T
from gguf import quants
d = sys.argv[1]
for line in open(d + "/manifest.txt"):
    kind, tname, rows, cols, stem = line.split()
    rows, cols, t = int(rows), int(cols), T[tname]
    raw = np.fromfile(d + "/" + stem + ".bin", dtype=np.uint8).reshape(rows, -1)
    quants.dequantize(raw, t).astype(np.float32).tofile(d + "/" + stem + ".py.f32")
    if kind == "enc":
        x = np.fromfile(d + "/" + stem + ".in.f32", dtype=np.float32).reshape(rows, cols)
        try:
            quants.quantize(x, t).tofile(d + "/" + stem + ".py.bin")
        except NotImplementedError:
            pass
print("gguf", importlib.metadata.version("gguf"), "numpy", np.__version__)
"""#

    /// (scheme, gguf-py type name, whether gguf-py can quantize it).
    static let encodable: [(String, String, Bool)] = [
        ("q8_0", "Q8_0", true), ("q4_0", "Q4_0", true), ("q4_1", "Q4_1", true), ("q5_0", "Q5_0", true),
        ("q5_1", "Q5_1", true), ("iq4_nl", "IQ4_NL", false), ("gguf-mxfp4", "MXFP4", true),
    ]

    /// Weights with the cases that break encoders: normal rows, ties on the code grid, all-zero
    /// blocks, one loud element, negative extremes, tiny and large magnitudes, exact repeats.
    func weights(rows: Int, cols: Int, seed: UInt64) -> [Float] {
        var w = randomMatrix(rows: rows, cols: cols, seed: seed)
        var g = SplitMix64(seed: seed ^ 0x5EED)
        for r in 0..<rows {
            let row = r * cols
            switch r % 8 {
            case 1: for j in 0..<cols { w[row + j] = Float(Int.random(in: -32...32, using: &g)) / 4 }   // halves and quarters
            case 2: for j in 0..<64 { w[row + j] = 0 }                                                  // two zero blocks
            case 3: w[row + 5] = -40 * abs(w[row + 5]) - 1                                              // negative extreme
            case 4: for j in 0..<cols { w[row + j] *= 1e-6 }
            case 5: for j in 0..<cols { w[row + j] *= 300 }
            case 6: for j in 0..<cols { w[row + j] = j % 3 == 0 ? 0.75 : -0.75 }                         // repeats, MXFP4 ties
            case 7: for j in 0..<cols { w[row + j] = Float(Int.random(in: -16...16, using: &g)) }      // integers
            default: break
            }
        }
        return w
    }

    /// Random blocks of `type` whose FP16 scales are finite (subnormals included); other bytes random.
    func randomBlocks(_ type: GGMLType, count: Int, seed: UInt64) -> [UInt8] {
        var g = SplitMix64(seed: seed)
        var b = (0..<(count * type.typeSize)).map { _ in UInt8.random(in: 0...255, using: &g) }
        let halfOffsets: [Int]
        switch type {
        case .q4_0, .q5_0, .q8_0, .iq4_nl, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq4_xs: halfOffsets = [0]
        case .q4_1, .q5_1, .q4_K, .q5_K: halfOffsets = [0, 2]
        case .q2_K: halfOffsets = [80, 82]
        case .q3_K: halfOffsets = [108]
        case .q6_K: halfOffsets = [208]
        default: halfOffsets = []   // mxfp4: every exponent byte is valid
        }
        for i in 0..<count {
            for o in halfOffsets {
                let e = UInt16.random(in: 0...29, using: &g)          // no infinities or NaNs
                let h = UInt16.random(in: 0...0xFFFF, using: &g) & 0x83FF | e << 10
                b[i * type.typeSize + o] = UInt8(truncatingIfNeeded: h)
                b[i * type.typeSize + o + 1] = UInt8(truncatingIfNeeded: h >> 8)
            }
        }
        return b
    }

    func write(_ path: String, _ a: [Float]) throws { try a.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path)) } }
    func write(_ path: String, _ a: [UInt8]) throws { try Data(a).write(to: URL(fileURLWithPath: path)) }
    func readFloats(_ path: String) throws -> [Float] {
        let d = try Data(contentsOf: URL(fileURLWithPath: path))
        return d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// Asserts two Float32 arrays are equal bit for bit, naming the first difference.
    func assertBitEqual(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        if a.count == b.count, let i = a.indices.first(where: { a[$0].bitPattern != b[$0].bitPattern }) {
            XCTFail("\(what): element \(i): ours \(a[i]) (0x\(String(a[i].bitPattern, radix: 16))), gguf-py \(b[i]) "
                    + "(0x\(String(b[i].bitPattern, radix: 16))); \(zip(a, b).filter { $0.0.bitPattern != $0.1.bitPattern }.count) differ",
                    file: file, line: line)
        }
    }

    func testOurBlocksAgreeWithGGUFPyBitForBit() throws {
        guard let version = Self.probe.version else { throw XCTSkip(Self.probe.why) }
        if version != Self.pinned { print("note: gguf \(version) installed; these tests were written against \(Self.pinned)") }
        let dir = temporaryDirectory(self, prefix: "gguf-crosscheck")
        var manifest = ""
        let rows = 48, cols = 256
        var ours: [String: [Float]] = [:], oursBytes: [String: [UInt8]] = [:]

        // Encodable types: our bytes for the special weights.
        for (scheme, tname, _) in Self.encodable {
            let codec = QuantScheme(scheme)!.codec
            let w = weights(rows: rows, cols: cols, seed: 31)
            var codes = [UInt8](repeating: 0, count: rows * codec.codeBytesPerRow(cols: cols))
            var dec = [Float](repeating: 0, count: rows * cols)
            w.withUnsafeBufferPointer { wp in codes.withUnsafeMutableBytes { c in
                codec.encode(wp.baseAddress!, cols: cols, rows: 0..<rows, rowScale: 1, codes: c.baseAddress!, scales: nil, zeroPoints: nil)
            } }
            codes.withUnsafeBytes { c in
                codec.decode(codes: c.baseAddress!, scales: nil, zeroPoints: nil, rowScale: 1, cols: cols, rows: 0..<rows, into: &dec)
            }
            let stem = "enc-" + tname
            try write("\(dir)/\(stem).in.f32", w)
            try write("\(dir)/\(stem).bin", codes)
            ours[stem] = dec; oursBytes[stem] = codes
            manifest += "enc \(tname) \(rows) \(cols) \(stem)\n"
        }
        // Every decodable quantized type: random blocks.
        let decodeTypes = GGMLDequantize.decodable.filter(\.isQuantized).sorted { $0.rawValue < $1.rawValue }
        for t in decodeTypes {
            let blocksPerRow = max(1, 512 / t.blockSize), n = 16
            let bytes = randomBlocks(t, count: n * blocksPerRow, seed: UInt64(t.rawValue) + 100)
            var dec = [Float](repeating: 0, count: n * blocksPerRow * t.blockSize)
            bytes.withUnsafeBytes { GGMLDequantize.decodeRows(t, $0.baseAddress!, cols: blocksPerRow * t.blockSize, rows: 0..<n, into: &dec) }
            let tname = t.name.uppercased()
            let stem = "rand-" + tname
            try write("\(dir)/\(stem).bin", bytes)
            ours[stem] = dec
            manifest += "dec \(tname) \(n) \(blocksPerRow * t.blockSize) \(stem)\n"
        }
        try manifest.write(toFile: dir + "/manifest.txt", atomically: true, encoding: .utf8)

        let out = try runPython(Self.script, args: [dir])
        print("GGUF cross-check against \(out.trimmingCharacters(in: .whitespacesAndNewlines))")

        for (stem, dec) in ours.sorted(by: { $0.key < $1.key }) {
            assertBitEqual(dec, try readFloats("\(dir)/\(stem).py.f32"), "\(stem): our decode vs gguf-py dequantize")
        }
        var quantizedByPy = 0
        for (scheme, tname, canQuantize) in Self.encodable {
            let path = "\(dir)/enc-\(tname).py.bin"
            let exists = FileManager.default.fileExists(atPath: path)
            XCTAssertEqual(exists, canQuantize, "gguf-py quantize support for \(tname) changed")
            guard exists else { continue }
            let py = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let mine = oursBytes["enc-" + tname]!
            XCTAssertEqual(py.count, mine.count, scheme)
            if py.count == mine.count, let i = mine.indices.first(where: { py[$0] != mine[$0] }) {
                let ts = QuantScheme(scheme)!.codec.codeBytesPerRow(cols: 32)
                XCTFail("\(scheme): byte \(i) (row \(i / (mine.count / rows)), block \((i % (mine.count / rows)) / ts)) "
                        + "ours 0x\(String(mine[i], radix: 16)) gguf-py 0x\(String(py[i], radix: 16))")
            }
            quantizedByPy += 1
        }
        XCTAssertEqual(quantizedByPy, 6)
    }

    /// The lattices we carry as hex equal gguf-py's (which carries ggml-common.h's), entry for entry.
    func testGridTablesMatchGGUFPy() throws {
        guard Self.probe.version != nil else { throw XCTSkip(Self.probe.why) }
        let out = try runPython(#"""
import numpy as np, gguf.quants as q
for c in (q.IQ2_XXS, q.IQ2_XS, q.IQ2_S, q.IQ3_XXS, q.IQ3_S):
    c.init_grid(); print(np.asarray(c.grid).reshape(c.grid_shape).astype(np.uint8).tobytes().hex())
print(bytes(q.IQ2_XXS.ksigns).hex())
"""#)
        let lines = out.split(separator: "\n").map(String.init)
        let mine = [GGMLGrids.iq2xxs, GGMLGrids.iq2xs, GGMLGrids.iq2s, GGMLGrids.iq3xxs, GGMLGrids.iq3s, GGMLIQuants.ksigns]
        XCTAssertEqual(lines.count, mine.count)
        for (l, m) in zip(lines, mine) { XCTAssertEqual(l, m.map { String(format: "%02x", $0) }.joined()) }
        XCTAssertEqual(GGMLGrids.iq2s.count, 1024 * 8)
        XCTAssertEqual(GGMLGrids.iq3s.count, 512 * 4)
    }

    /// Runs a Python script with arguments, returning its standard output; a non-zero exit fails.
    func runPython(_ script: String, args: [String] = []) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus != 0 { XCTFail("python failed: \(String(decoding: e, as: UTF8.self))") }
        return String(decoding: o, as: UTF8.self)
    }
}

/// Goldens from ggml's own C reference encoders: `quantize_row_{q8_0,q4_0,q4_1,q5_0,q5_1,iq4_nl,
/// mxfp4}_ref` of ggml-org/ggml commit d99724f (ggml-quants.c), built with gcc 12.2 -O2 for
/// x86-64 and again with -march=native (FMA contraction on) — both builds wrote the same bytes —
/// run on `weights(rows: 48, cols: 256, seed: 31)` below. gguf-py cannot quantize IQ4_NL, so this
/// is its only byte-level check. ggml leaves the codes of an IQ4_NL block with max |w| < 1e-15
/// uninitialised; the 12 such blocks here were set to our choice (index 8, bytes 0x88) before
/// hashing, their FP16 scale being 0 in both. Needs no Python.
extension GGUFCrossCheckTests {
    func testEncodersMatchGGMLCReferenceBytes() {
        let golden: [(String, String)] = [
            ("q8_0", "e527a27cc4871a50"), ("q4_0", "43a190e976608bf5"), ("q4_1", "154e6353e675d91d"),
            ("q5_0", "34a372f315681a52"), ("q5_1", "8f0668f07fef7f16"), ("iq4_nl", "7fce2935ae26b0b3"),
            ("gguf-mxfp4", "62517420f19a1e17"),
        ]
        let rows = 48, cols = 256
        let w = weights(rows: rows, cols: cols, seed: 31)
        for (scheme, hash) in golden {
            let codec = QuantScheme(scheme)!.codec
            var codes = [UInt8](repeating: 0, count: rows * codec.codeBytesPerRow(cols: cols))
            w.withUnsafeBufferPointer { wp in codes.withUnsafeMutableBytes { c in
                codec.encode(wp.baseAddress!, cols: cols, rows: 0..<rows, rowScale: 1, codes: c.baseAddress!, scales: nil, zeroPoints: nil)
            } }
            XCTAssertEqual(codes.withUnsafeBytes { XXH64.hex(XXH64.hash($0)) }, hash, scheme)
        }
    }
}
