import XCTest
@testable import Formats
import TestSupport

/// Mutates real inputs thousands of times with a seeded generator: every outcome must be a
/// value or a `FormatError`, never a crash or an out-of-bounds read.
final class FuzzTests: XCTestCase {
    /// A small safetensors file cut from tiny-moe: its small tensors (norms, conv biases, A_log,
    /// router biases, ...), so each case copies kilobytes, not the fixture's 22 MB.
    private func base() throws -> [UInt8] {
        let ck = try Checkpoint(path: Fixtures.tinyMoE)
        let small = ck.tensorNames.map { ck.view($0)! }.filter { $0.info.byteCount <= 1024 }
        XCTAssertGreaterThan(small.count, 40)
        let dir = temporaryDirectory(self)
        try writeSafetensors(dir + "/base.safetensors", small.map { Tensor($0) }, metadata: ["format": "pt"])
        return readFile(dir + "/base.safetensors")
    }

    private static let interesting: [UInt8] = Array("{}[]\",:-0123456789eE.\\ ntfuI".utf8) + [0x00, 0xFF, 0x80]

    private func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let headerEnd = b.count >= 8 ? min(b.count, 8 + (Int(b[0]) | Int(b[1]) << 8)) : b.count
            switch Int.random(in: 0..<10, using: &rng) {
            case 0...3 where headerEnd > 8:    // a header byte
                let i = Int.random(in: 8..<headerEnd, using: &rng)
                b[i] = Bool.random(using: &rng) ? Self.interesting.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            case 4 where b.count >= 8:         // the header-length field
                let v: UInt64 = [UInt64.random(in: 0...UInt64.max, using: &rng), UInt64.random(in: 0...UInt64(b.count + 16), using: &rng),
                                 UInt64(headerEnd - 8) &+ UInt64(bitPattern: Int64.random(in: -3...3, using: &rng))].randomElement(using: &rng)!
                withUnsafeBytes(of: v.littleEndian) { for i in 0..<8 { b[i] = $0[i] } }
            case 5 where b.count > 8:          // one length byte
                b[Int.random(in: 0..<8, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            case 6:                            // truncate
                b.removeLast(Int.random(in: 0...b.count, using: &rng))
            case 7:                            // append
                b += (0..<Int.random(in: 1...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 8 where headerEnd > 9:        // delete or duplicate a header byte (shifts everything after)
                let i = Int.random(in: 8..<headerEnd, using: &rng)
                if Bool.random(using: &rng) { b.remove(at: i) } else { b.insert(b[i], at: i) }
            default:                           // a data byte
                if !b.isEmpty { b[Int.random(in: 0..<b.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng) }
            }
        }
        return b
    }

    func testMutatedSafetensorsOnlyEverThrowFormatErrors() throws {
        let original = try base()
        var rng = SplitMix64(seed: 0x5AFE)
        var accepted = 0, rejected = 0
        let out = UnsafeMutablePointer<Float>.allocate(capacity: 1 << 16)
        defer { out.deallocate() }
        for _ in 0..<5000 {
            let bytes = mutate(original, &rng)
            do {
                let f = try SafetensorsFile(file: MappedFile(path: "fuzz.safetensors", contents: bytes))
                accepted += 1
                // Whatever was accepted must be readable in full, within the file.
                for t in f.tensors {
                    XCTAssertLessThanOrEqual(t.offset + t.byteCount, bytes.count)
                    XCTAssertGreaterThanOrEqual(t.offset, f.dataOffset)
                    if t.dtype.isFloatingPoint && t.elementCount <= 1 << 16 { try f.view(t.name)!.readFloats(into: out) }
                }
            } catch {
                rejected += 1
                XCTAssertTrue(error.description.hasPrefix("fuzz.safetensors: "), error.description)
            }
        }
        XCTAssertGreaterThan(rejected, 2500)
        XCTAssertGreaterThan(accepted, 100, "data-byte mutations keep files valid")
    }

    func testMutatedConfigsOnlyEverThrowFormatErrors() throws {
        for fixture in [Fixtures.tinyMoE, Fixtures.tinyDense] {
            let original = readFile(fixture + "/config.json")
            var rng = SplitMix64(seed: 0xC0F1)
            var accepted = 0
            for _ in 0..<3000 {
                var b = original
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let i = Int.random(in: 0..<b.count, using: &rng)
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0: b[i] = Self.interesting.randomElement(using: &rng)!
                    case 1: b.insert(Self.interesting.randomElement(using: &rng)!, at: i)
                    default: b.remove(at: i)
                    }
                }
                guard let json = try? JSONParser.parse(b) else { continue }
                do {
                    let c = try ModelConfig(json: json, file: "fuzz.json")
                    accepted += 1
                    for l in 0..<c.layers.count { _ = TensorMap.expectedTensors(of: c, layer: l) }
                } catch {
                    XCTAssertTrue(error.description.hasPrefix("fuzz.json: invalid config: "), error.description)
                }
            }
            XCTAssertGreaterThan(accepted, 100)
        }
    }

    func testMutatedShardIndexesOnlyEverThrowFormatErrors() throws {
        let dir = temporaryDirectory(self)
        let ck = try Checkpoint(path: Fixtures.tinyDense)
        try writeFileAtomically(dir + "/config.json", contents: readFile(Fixtures.tinyDense + "/config.json"))
        var weightMap = JSONObject()
        for (i, n) in ck.tensorNames.enumerated() { weightMap[n] = .string(i % 2 == 0 ? "a.safetensors" : "b.safetensors") }
        for (file, parity) in [("a.safetensors", 0), ("b.safetensors", 1)] {
            try writeSafetensors(dir + "/" + file, ck.tensorNames.enumerated().filter { $0.offset % 2 == parity }.map { Tensor(ck.view($0.element)!) })
        }
        let index = JSONWriter.bytes(["weight_map": .object(weightMap)])
        var rng = SplitMix64(seed: 0x1DE)
        for _ in 0..<300 {
            var b = index
            let i = Int.random(in: 0..<b.count, using: &rng)
            b[i] = Self.interesting.randomElement(using: &rng)!
            writeFile(dir + "/model.safetensors.index.json", b)
            do {
                _ = try TensorMap(checkpoint: Checkpoint(path: dir))
            } catch {
                XCTAssertTrue(error.description.hasPrefix(dir), error.description)
            }
        }
    }
}
