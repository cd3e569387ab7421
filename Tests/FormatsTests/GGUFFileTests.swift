import XCTest
@testable import Formats
import TestSupport

/// The GGUF reader's validation, on files built byte by byte: each corruption a hostile or broken
/// file can carry gives an error naming the file and the key or tensor, never a crash or a huge
/// allocation; and the pieces of the mapping that are pure arithmetic (value transform, row
/// permutation, size label).
final class GGUFFileTests: XCTestCase {
    /// (name, dims, type id, offset relative to the data area)
    typealias Info = (name: String, dims: [UInt64], type: UInt32, offset: UInt64)

    /// A GGUF v3 file: header, `kv`, tensor infos, padding to `alignment`, `data` bytes of data.
    func gguf(kv: [(String, GGUFValue)] = [("general.architecture", .string("test"))], tensors: [Info],
              data: Int, alignment: Int = 32, version: UInt32 = 3, tensorCount: UInt64? = nil, kvCount: UInt64? = nil) -> [UInt8] {
        var e = GGUFEncoder()
        for b in GGUFFile.magic { e.value(.u8(b)) }
        e.u32(version)
        e.u64(tensorCount ?? UInt64(tensors.count))
        e.u64(kvCount ?? UInt64(kv.count))
        for (k, v) in kv { e.keyValue(k, v) }
        for t in tensors {
            e.string(t.name); e.u32(UInt32(t.dims.count))
            for d in t.dims { e.u64(d) }
            e.u32(t.type); e.u64(t.offset)
        }
        e.pad(to: alignment)
        var b = e.bytes
        for i in 0..<data { b.append(UInt8(truncatingIfNeeded: i)) }
        return b
    }

    func open(_ bytes: [UInt8]) throws -> GGUFFile { try GGUFFile(file: MappedFile(path: "t.gguf", contents: bytes)) }

    func assertError(_ bytes: [UInt8], _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try open(bytes), file: file, line: line) { e in
            XCTAssertEqual("\(e)", expected, file: file, line: line)
        }
    }

    let good: [Info] = [("a", [32, 2], 0, 0), ("b", [64], 2, 256)]   // f32 [2, 32]: 256 bytes; q4_0 [64]: 36 bytes

    func testReadsHeaderMetadataAndTensors() throws {
        let kv: [(String, GGUFValue)] = [
            ("general.architecture", .string("test")), ("x.u8", .u8(7)), ("x.i16", .i16(-3)), ("x.f32", .f32(0.5)),
            ("x.bool", .bool(true)), ("x.u64", .u64(1 << 40)), ("x.f64", .f64(-2.25)),
            ("x.arr", .array(.i32, [.i32(1), .i32(-2)])), ("x.strs", .array(.string, [.string("a b"), .string("ü")])),
        ]
        let f = try open(gguf(kv: kv, tensors: good, data: 292))
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.metadata.map(\.key), kv.map(\.0))
        for (k, v) in kv { XCTAssertEqual(f.value(k), v, k) }
        XCTAssertEqual(f.tensors.map(\.name), ["a", "b"])
        let a = f.tensor("a")!, b = f.tensor("b")!
        XCTAssertEqual(a.shape, [2, 32]); XCTAssertEqual(a.type, .f32); XCTAssertEqual(a.byteCount, 256)
        XCTAssertEqual(b.type, .q4_0); XCTAssertEqual(b.byteCount, 36)
        XCTAssertEqual(a.offset, f.dataOffset); XCTAssertEqual(b.offset, f.dataOffset + 256)
        XCTAssertEqual(f.dataOffset % 32, 0)
    }

    func testBadMagicAndVersion() {
        var b = gguf(tensors: good, data: 292)
        b[0] = UInt8(ascii: "X")
        assertError(b, "t.gguf: invalid GGUF file: no GGUF magic (the first bytes are 58 47 55 46)")
        assertError(gguf(tensors: good, data: 292, version: 1), "t.gguf: invalid GGUF file: version 1 is not supported (2 and 3 are)")
        assertError(Array(gguf(tensors: good, data: 292).prefix(20)), "t.gguf: invalid GGUF file: the file has 20 bytes, shorter than a GGUF header (24)")
    }

    func testTruncatedFiles() {
        let full = gguf(tensors: good, data: 292)
        // Inside the data area: the last tensor's bytes are missing.
        assertError(Array(full.dropLast(10)), "t.gguf: tensor 'b': 36 bytes at data offset 256 run past the end of the data area (282 bytes): the file is truncated or the offset is wrong")
        // Counts that the rest of the file cannot hold.
        assertError(Array(full.prefix(40)), "t.gguf: invalid GGUF file: tensor count 2 cannot fit in the 16 bytes left")
        // Inside the metadata.
        assertError(Array(gguf(tensors: [], data: 0).prefix(40)), "t.gguf: invalid GGUF file: key of metadata entry 0: length 20 exceeds the 8 bytes left in the file")
    }

    func testOffsetsAlignmentAndOverlap() {
        assertError(gguf(tensors: [("a", [32, 2], 0, 16)], data: 400), "t.gguf: tensor 'a': offset 16 is not a multiple of the alignment 32")
        assertError(gguf(tensors: [("a", [32, 2], 0, 1 << 40)], data: 400),
                    "t.gguf: tensor 'a': 256 bytes at data offset 1099511627776 run past the end of the data area (400 bytes): the file is truncated or the offset is wrong")
        assertError(gguf(tensors: [("a", [32, 2], 0, 0), ("b", [32], 0, 128)], data: 400), "t.gguf: tensor 'b': its bytes overlap tensor 'a'")
        assertError(gguf(kv: [("general.alignment", .u32(3))], tensors: good, data: 292), "t.gguf: invalid GGUF file: key 'general.alignment' is 3, not a power of two")
        assertError(gguf(kv: [("general.alignment", .u64(64))], tensors: good, data: 292), "t.gguf: invalid GGUF file: key 'general.alignment' must be a u32, got u64")
        // A custom alignment is honoured: 64 puts b at 256 still (a multiple of 64), and 48 is refused.
        XCTAssertNoThrow(try open(gguf(kv: [("general.alignment", .u32(64))], tensors: good, data: 292, alignment: 64)))
    }

    func testTypesAndShapes() {
        assertError(gguf(tensors: [("a", [32], 99, 0)], data: 128), "t.gguf: tensor 'a': unknown ggml type id 99")
        assertError(gguf(tensors: [("q", [48], 2, 0)], data: 128), "t.gguf: tensor 'q': row width 48 is not a multiple of q4_0's block of 32")
        assertError(gguf(tensors: [("a", [32, 0], 0, 0)], data: 128), "t.gguf: tensor 'a': dimension 1 is 0 (must be 1 to 2147483647)")
        assertError(gguf(tensors: [("a", [1, 1, 1, 1, 1], 0, 0)], data: 128), "t.gguf: tensor 'a': 5 dimensions (GGUF tensors have 1 to 4)")
        assertError(gguf(tensors: [("a", [2_000_000_000, 2_000_000_000, 2_000_000_000], 0, 0)], data: 128),
                    "t.gguf: tensor 'a': element count overflows (dimensions so far [2000000000, 2000000000])")
        assertError(gguf(tensors: [("a", [32], 0, 0), ("a", [32], 0, 128)], data: 256), "t.gguf: tensor 'a': the name appears twice in the tensor table")
    }

    func testOverflowingCountsAndLengths() {
        assertError(gguf(tensors: good, data: 292, tensorCount: 1 << 62),
                    "t.gguf: invalid GGUF file: tensor count 4611686018427387904 cannot fit in the 428 bytes left")
        assertError(gguf(tensors: good, data: 292, kvCount: UInt64.max),
                    "t.gguf: invalid GGUF file: metadata count 18446744073709551615 cannot fit in the 428 bytes left")
        // A key length of 2^63.
        var b = gguf(tensors: good, data: 292)
        for i in 0..<8 { b[24 + i] = i == 7 ? 0x80 : 0 }
        assertError(b, "t.gguf: invalid GGUF file: key of metadata entry 0: length 9223372036854775808 exceeds the 420 bytes left in the file")
        // An array of 2^61 u32 elements.
        var e = GGUFEncoder()
        e.string("big"); e.u32(GGUFValueType.array.rawValue); e.u32(GGUFValueType.u32.rawValue); e.u64(1 << 61)
        var c = Array(gguf(kv: [], tensors: [], data: 0, kvCount: 1).prefix(24)) + e.bytes
        c += [UInt8](repeating: 0, count: 64)
        assertError(c, "t.gguf: invalid GGUF file: key 'big': 2305843009213693952 elements of u32 cannot fit in the 64 bytes left")
        // Unknown value types, a bool that is not 0/1, a duplicate key.
        var d = GGUFEncoder()
        d.string("k"); d.u32(13)
        assertError(Array(gguf(kv: [], tensors: [], data: 0, kvCount: 1).prefix(24)) + d.bytes + [0, 0, 0, 0], "t.gguf: invalid GGUF file: key 'k': unknown value type 13")
        assertError(gguf(kv: [("k", .u8(1)), ("k", .u8(2))], tensors: [], data: 0), "t.gguf: invalid GGUF file: key 'k' appears twice")
        var f = gguf(kv: [("flag", .bool(true))], tensors: [], data: 0)
        f[24 + 8 + 4 + 4] = 2
        assertError(f, "t.gguf: invalid GGUF file: key 'flag': bool byte is 2, not 0 or 1")
    }

    func testNegExpInverseIsExact() {
        // Every A_log a BF16 checkpoint can hold in a wide range maps back to one with the same −exp.
        var checked = 0
        for hi in UInt16(0x3800)...UInt16(0x4180) {   // 2^-15 ... 16, BF16 bit patterns
            let x = Float(bitPattern: UInt32(hi) << 16)
            var a = x
            GGUFValueTransform.negExp.apply(&a, 1)
            guard let back = GGUFValueTransform.negExp.invert(a) else { XCTFail("no inverse for \(x)"); return }
            var again = back
            GGUFValueTransform.negExp.apply(&again, 1)
            XCTAssertEqual(again.bitPattern, a.bitPattern, "A_log \(x)")
            checked += 1
        }
        XCTAssertEqual(checked, 0x4180 - 0x3800 + 1)
        XCTAssertNil(GGUFValueTransform.negExp.invert(0.5))
        XCTAssertNil(GGUFValueTransform.negExp.invert(-.infinity))
    }

    func testRowPermutationIsLlamaCppsPermute() {
        // llama.cpp: w.reshape(n_head, 2, D/2, …).swapaxes(1, 2): head of D = 4 rows [r0 r1 r2 r3]
        // is stored [r0 r2 r1 r3].
        let p = GGUFRowPermutation(rows: 8, heads: 2)
        XCTAssertEqual((0..<8).map(p.stored), [0, 2, 1, 3, 4, 6, 5, 7])
        let q = GGUFRowPermutation(rows: 12, heads: 2)
        XCTAssertEqual((0..<12).map(q.stored), [0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11])
        XCTAssertEqual(Set((0..<12).map(q.stored)).count, 12)
    }

    func testSizeLabelNotation() {
        XCTAssertEqual(NemotronHGGUF.roundedCount(6_214_288), "6.2M")
        XCTAssertEqual(NemotronHGGUF.roundedCount(4_962_448), "5.0M")
        XCTAssertEqual(NemotronHGGUF.roundedCount(30_000_000_000), "30B")
        XCTAssertEqual(NemotronHGGUF.roundedCount(999), "1.0K")
        XCTAssertEqual(NemotronHGGUF.displayName("/x/nemotron-h-tiny_moe"), "Nemotron H Tiny Moe")
    }
}
