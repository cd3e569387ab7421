import XCTest
@testable import Formats
import TestSupport

final class SafetensorsReaderTests: XCTestCase {
    private func open(_ bytes: [UInt8], name: String = "bad.safetensors") throws -> SafetensorsFile {
        try SafetensorsFile(file: MappedFile(path: name, contents: bytes))
    }

    private func reject(_ header: String, data: [UInt8] = [], length: UInt64? = nil, _ message: String,
                        file: StaticString = #filePath, line: UInt = #line) {
        assertFormatError("bad.safetensors: " + message, file: file, line: line) {
            _ = try open(craftedSafetensors(header: header, data: data, length: length))
        }
    }

    // MARK: dtypes

    func testEveryDTypeRoundTripsWithItsSizeAndBytes() throws {
        let dir = temporaryDirectory(self)
        var rng = SplitMix64(seed: 1)
        var tensors: [Tensor] = []
        for (i, d) in DType.allCases.enumerated() {
            let shape = [2, i + 1]
            tensors.append(Tensor("t.\(d.rawValue)", d, shape, (0..<(2 * (i + 1) * d.byteSize)).map { _ in UInt8.random(in: 0...255, using: &rng) }))
        }
        XCTAssertEqual(DType.allCases.map(\.rawValue), ["BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64",
                                                       "F16", "BF16", "F32", "F64", "F8_E4M3", "F8_E5M2"])
        try writeSafetensors(dir + "/all.safetensors", tensors)
        let f = try SafetensorsFile(path: dir + "/all.safetensors")
        XCTAssertEqual(f.tensors.count, 15)
        for t in tensors {
            let v = try XCTUnwrap(f.view(t.name))
            XCTAssertEqual(v.dtype, t.dtype)
            XCTAssertEqual(v.shape, t.shape)
            XCTAssertEqual(Array(v.bytes), t.bytes, t.name)
        }
    }

    func testFloatConversionOfEachFloatType() throws {
        func floats(_ d: DType, _ bytes: [UInt8]) throws -> [Float] {
            let n = bytes.count / d.byteSize
            let f = try open(craftedSafetensors(header: "{\"x\":{\"dtype\":\"\(d.rawValue)\",\"shape\":[\(n)],\"data_offsets\":[0,\(bytes.count)]}}", data: bytes))
            return try f.view("x")!.floats()
        }
        func le<T: FixedWidthInteger>(_ xs: [T]) -> [UInt8] { xs.flatMap { x in withUnsafeBytes(of: x.littleEndian) { Array($0) } } }

        XCTAssertEqual(try floats(.f32, le([Float(1.5).bitPattern, Float(-2).bitPattern])), [1.5, -2])
        XCTAssertEqual(try floats(.f64, le([Double(0.25).bitPattern, Double(-3e3).bitPattern])), [0.25, -3000])
        XCTAssertEqual(try floats(.bf16, le([UInt16(0x3F80), 0xC000, 0x3F00])), [1, -2, 0.5])
        XCTAssertEqual(try floats(.f16, le([UInt16(0x3C00), 0xC000, 0x7BFF, 0x0001])), [1, -2, 65504, 0x1p-24])
        let e4 = try floats(.f8e4m3, [0x38, 0x40, 0xB8, 0x7E, 0x01, 0x00, 0x80])
        XCTAssertEqual(Array(e4), [1, 2, -1, 448, 0x1p-9, 0, -0.0])
        XCTAssertTrue(try floats(.f8e4m3, [0x7F, 0xFF]).allSatisfy(\.isNaN))
        XCTAssertEqual(try floats(.f8e5m2, [0x3C, 0x7B, 0x01, 0x7C, 0xFC]), [1, 57344, 0x1p-16, .infinity, -.infinity])
        XCTAssertTrue(try floats(.f8e5m2, [0x7D, 0x7E, 0x7F]).allSatisfy(\.isNaN))
        assertFormatError("bad.safetensors: tensor 'x': dtype I32 cannot be read as floating-point weights") {
            _ = try floats(.i32, le([Int32(1)]))
        }
    }

    /// Every F16 and BF16 bit pattern, from an aligned and a misaligned source (safetensors only
    /// promises byte alignment, so both paths are live).
    func testHalfPrecisionConversionIsExactForAllPatternsAndAlignments() {
        let n = 65536
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 2 * n + 1, alignment: 16)
        defer { raw.deallocate() }
        let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { out.deallocate() }
        for shift in [0, 1] {
            for i in 0..<n { raw.storeBytes(of: UInt16(i).littleEndian, toByteOffset: shift + 2 * i, as: UInt16.self) }
            let src = UnsafeRawBufferPointer(start: raw + shift, count: 2 * n)
            FloatConversion.convert(src, dtype: .bf16, count: n, into: out)
            var bad = 0
            for i in 0..<n where out[i].bitPattern != UInt32(i) << 16 { bad += 1 }
            XCTAssertEqual(bad, 0, "bf16, shift \(shift)")
            FloatConversion.convert(src, dtype: .f16, count: n, into: out)
            bad = 0
            for i in 0..<n {
                let want = Float(Float16(bitPattern: UInt16(i)))
                if !(want.isNaN ? out[i].isNaN : out[i].bitPattern == want.bitPattern) { bad += 1 }
            }
            XCTAssertEqual(bad, 0, "f16, shift \(shift)")
        }
    }

    /// Outputs past `streamingThreshold` take the non-temporal path: every offset of source and
    /// destination, and a length that leaves a tail, must match the plain loop exactly.
    func testStreamedConversionMatchesPlainConversion() {
        let n = FloatConversion.streamingThreshold + 13
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 2 * n + 2, alignment: 64)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: n + 8)
        let ref = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { raw.deallocate(); out.deallocate(); ref.deallocate() }
        var rng = SplitMix64(seed: 3)
        for i in 0..<(n + 1) { raw.storeBytes(of: UInt16(truncatingIfNeeded: rng.next()), toByteOffset: 2 * i, as: UInt16.self) }
        for dtype in [DType.bf16, .f16] {
            for (srcShift, dstShift) in [(0, 0), (1, 3), (0, 5), (1, 7)] {
                let src = UnsafeRawBufferPointer(start: raw + srcShift, count: 2 * n)
                FloatConversion.convert(src, dtype: dtype, count: n, into: out + dstShift)
                // The reference: the same conversion in pieces below the threshold.
                let piece = FloatConversion.streamingThreshold / 4
                var i = 0
                while i < n {
                    let k = min(piece, n - i)
                    FloatConversion.convert(UnsafeRawBufferPointer(rebasing: src[(2 * i)..<(2 * (i + k))]), dtype: dtype, count: k, into: ref + i)
                    i += k
                }
                XCTAssertEqual(memcmp(out + dstShift, ref, 4 * n), 0, "\(dtype) src+\(srcShift) dst+\(dstShift)")
            }
        }
    }

    /// The arithmetic FP8 paths against the tables built from the format definitions, all 256 codes.
    func testFP8ConversionMatchesTheDefinitionForEveryCode() {
        let codes = (0..<256).map { UInt8($0) }
        var out = [Float](repeating: 0, count: 256)
        for (dtype, table) in [(DType.f8e4m3, FloatConversion.e4m3Table), (.f8e5m2, FloatConversion.e5m2Table)] {
            codes.withUnsafeBytes { FloatConversion.convert($0, dtype: dtype, count: 256, into: &out) }
            for c in 0..<256 {
                let want = table[c]
                XCTAssertTrue(want.isNaN ? out[c].isNaN : out[c].bitPattern == want.bitPattern, "\(dtype) code \(c): \(out[c]) vs \(want)")
            }
        }
    }

    func testIntegerTypesConvertByValue() {
        let bytes: [UInt8] = [0xFF, 0xFF, 0x01, 0x00]
        var out = [Float](repeating: 0, count: 4)
        bytes.withUnsafeBytes { b in
            FloatConversion.convert(b, dtype: .i8, count: 4, into: &out)
            XCTAssertEqual(out, [-1, -1, 1, 0])
            FloatConversion.convert(b, dtype: .u8, count: 4, into: &out)
            XCTAssertEqual(out, [255, 255, 1, 0])
            FloatConversion.convert(b, dtype: .i16, count: 2, into: &out)
            XCTAssertEqual(Array(out[0..<2]), [-1, 1])
            FloatConversion.convert(b, dtype: .u16, count: 2, into: &out)
            XCTAssertEqual(Array(out[0..<2]), [65535, 1])
        }
    }

    func testMetadataAndEmptyFile() throws {
        let f = try open(craftedSafetensors(header: "{\"__metadata__\":{\"format\":\"pt\"}}  "))
        XCTAssertEqual(f.metadata, ["format": "pt"])
        XCTAssertEqual(f.tensors.count, 0)
        XCTAssertEqual(f.dataOffset, 8 + 34)
    }

    func testZeroSizedAndScalarTensors() throws {
        let f = try open(craftedSafetensors(
            header: #"{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#,
            data: [0, 0, 128, 63]))
        XCTAssertEqual(f.info("e")?.byteCount, 0)
        XCTAssertEqual(try f.view("s")!.floats(), [1])
    }

    // MARK: rejections (one crafted file each; the message names the file and the tensor)

    func testRejectsFileShorterThanLengthField() {
        assertFormatError("bad.safetensors: invalid safetensors header: file is 4 bytes, shorter than the 8-byte header length") {
            _ = try open([1, 2, 3, 4])
        }
    }

    func testRejectsHeaderLengthPastEndOfFile() throws {
        let dir = temporaryDirectory(self)
        writeFile(dir + "/t.safetensors", craftedSafetensors(header: "{}", length: 100))
        assertFormatError("\(dir)/t.safetensors: invalid safetensors header: header length 100 runs past the end of the 10-byte file (truncated?)") {
            _ = try SafetensorsFile(path: dir + "/t.safetensors")
        }
    }

    func testRejectsAbsurdHeaderLength() {
        reject("{}", length: 1 << 40, "invalid safetensors header: header length 1099511627776 exceeds the 100000000-byte limit")
        reject("{}", length: UInt64.max, "invalid safetensors header: header length 18446744073709551615 exceeds the 100000000-byte limit")
    }

    func testRejectsHeaderThatIsNotJSON() {
        reject("{not json}", "invalid safetensors header: header is not valid JSON: expected a string key at byte 9")
        reject("[1]", "invalid safetensors header: header is not a JSON object")
        reject(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#,
               "invalid safetensors header: header is not valid JSON: unterminated object at byte 61")
        reject(#"{"w":{"dtype":"F32","shape":[1,],"data_offsets":[0,4]}}"#,
               "tensor 'w': header entry is not valid JSON: unexpected character ']' at byte 39 (in w.shape.[1])")
    }

    func testRejectsMissingAndMistypedFields() {
        reject(#"{"w":{"dtype":"F32","shape":[1]}}"#, "tensor 'w': missing field 'data_offsets'")
        reject(#"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0], "tensor 'w': missing field 'dtype'")
        reject(#"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#, data: [0, 0, 0, 0], "tensor 'w': missing field 'shape'")
        reject(#"{"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0], "tensor 'w': field 'dtype' is not a string")
        reject(#"{"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}"#, data: [0, 0, 0, 0], "tensor 'w': field 'shape' is not an array")
        reject(#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0],
               "tensor 'w': shape [-1] has an entry that is not a non-negative integer")
        reject(#"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0],
               "tensor 'w': shape [1.5] has an entry that is not a non-negative integer")
        reject(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, data: [0, 0, 0, 0],
               "tensor 'w': field 'data_offsets' is not a pair of integers")
        reject(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0],
               "tensor 'w': data_offsets [4, 0] are not increasing")
        reject(#"{"w":5}"#, "tensor 'w': header entry is not an object")
        reject(#"{"__metadata__":{"a":1}}"#, "invalid safetensors header: __metadata__ value for 'a' is not a string")
    }

    func testRejectsUnknownDType() {
        reject(#"{"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0], "tensor 'w': unknown dtype 'F12'")
    }

    func testRejectsByteSizeThatDoesNotMatchShape() {
        reject(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0],
               "tensor 'w': data_offsets [0, 4] hold 4 bytes but shape [2] of F32 needs 8")
        reject(#"{"w":{"dtype":"BF16","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0],
               "tensor 'w': shape [4294967296, 4294967296] overflows")
    }

    func testRejectsOffsetsOutOfRange() {
        reject(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0],
               "tensor 'w': data_offsets end at 8, past the end of the 4-byte data section (truncated file?)")
    }

    func testRejectsOverlappingOffsets() {
        reject(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
               data: [UInt8](repeating: 0, count: 12),
               "tensor 'b': data_offsets overlap tensor 'a' (this one begins at 4, that one ends at 8)")
    }

    func testRejectsHoles() {
        reject(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
               data: [UInt8](repeating: 0, count: 12),
               "tensor 'b': data_offsets begin at 8, leaving a hole of 4 bytes after tensor 'a' (which ends at 4)")
        reject(#"{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: [UInt8](repeating: 0, count: 8),
               "tensor 'b': data_offsets begin at 4, leaving a hole of 4 bytes at the start of the data section")
        reject(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [UInt8](repeating: 0, count: 8),
               "tensor 'a': data ends at 4, but the data section has 4 more bytes after it that belong to no tensor")
        reject("{}", data: [1, 2], "invalid safetensors header: the header declares no tensors but the data section has 2 bytes")
    }

    func testRejectsDuplicateNames() {
        reject(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
               data: [0, 0, 0, 0], "tensor 'w': declared more than once in the header (byte 62)")
        reject(#"{"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0],
               "tensor 'w': header entry is not valid JSON: duplicate key \"dtype\" at byte 28 (in w)")
    }

    func testFixturesOpen() throws {
        for dir in [Fixtures.tinyMoE, Fixtures.tinyDense] {
            let f = try SafetensorsFile(path: dir + "/model.safetensors")
            XCTAssertEqual(f.dataOffset % 8, 0)
            XCTAssertGreaterThan(f.tensors.count, 80)
            XCTAssertEqual(f.tensors.last.map { $0.offset + $0.byteCount }, f.file.count)
        }
    }
}
