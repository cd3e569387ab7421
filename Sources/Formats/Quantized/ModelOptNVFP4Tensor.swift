/// A ModelOpt NVFP4 weight: E2M1 codes two to a byte [rows, cols/2] (low nibble = even column),
/// an FP8 E4M3 scale per 16 columns [rows, cols/16] and one Float32 second-level scale;
/// value = e2m1(code) × e4m3(block scale) × scale_2 (`ModelOptLayout`).
public struct ModelOptNVFP4Tensor: EncodedTensor {
    public let name: String
    public let codes: TensorView
    let blockScales: TensorView
    let globalScaleView: TensorView
    public let globalScale: Float
    public let shape: [Int]

    /// The 16 E2M1 values, by code (sign in bit 3).
    static let e2m1: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]

    init(name: String, codes: TensorView, blockScales: TensorView, blockScalesName: String,
         globalScale: TensorView, globalScaleName: String) throws(FormatError) {
        guard codes.shape.count == 2 else {
            throw FormatError.invalidTensor(file: codes.path, tensor: name, message: "NVFP4 weight of shape \(codes.shape); expected 2 dimensions")
        }
        let rows = codes.shape[0], cols = codes.shape[1] * 2
        guard cols % 16 == 0, blockScales.shape == [rows, cols / 16], blockScales.dtype == .f8e4m3 else {
            throw FormatError.invalidTensor(file: blockScales.path, tensor: blockScalesName, message:
                "\(blockScales.dtype.rawValue) \(blockScales.shape); expected F8_E4M3 [\(rows), \(cols / 16)] for \(name) U8 \(codes.shape) (16 columns a scale)")
        }
        // Block scales are E4M3 bytes: NaN (0x7F / 0xFF) or negative ones make no value.
        let b = blockScales.bytes
        for i in 0..<b.count where b[i] & 0x7F == 0x7F || b[i] & 0x80 != 0 {
            throw FormatError.invalidTensor(file: blockScales.path, tensor: blockScalesName, message:
                "block scale byte 0x\(String(b[i], radix: 16)) at [\(i / (cols / 16)), \(i % (cols / 16))] is \(b[i] & 0x7F == 0x7F ? "NaN" : "negative")")
        }
        guard globalScale.elementCount == 1 else {
            throw FormatError.invalidTensor(file: globalScale.path, tensor: globalScaleName, message: "shape \(globalScale.shape); expected one value")
        }
        self.globalScale = try positiveScales(globalScale, name: globalScaleName)[0]
        self.name = name
        self.codes = codes
        self.blockScales = blockScales
        globalScaleView = globalScale
        shape = [rows, cols]
    }

    public var path: String { codes.path }
    public var codeDType: DType { .u8 }
    public var byteCount: Int { codes.info.byteCount + blockScales.info.byteCount + globalScaleView.info.byteCount }
    public var storageDescription: String { "E2M1 × E4M3 per 16 × weight_scale_2 (ModelOpt NVFP4)" }

    public func decodeRows(_ rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws(FormatError) {
        let cols = shape[1], half = cols / 2, blocks = cols / 16
        let c = codes.bytes, s = blockScales.bytes, g = globalScale
        Self.e2m1.withUnsafeBufferPointer { lut in
            FloatConversion.e4m3Table.withUnsafeBufferPointer { e4 in
                for (i, r) in rows.enumerated() {
                    let o = out + i * cols
                    for b in 0..<blocks {
                        let scale = e4[Int(s[r * blocks + b])] * g
                        for k in 0..<8 {
                            let byte = c[r * half + b * 8 + k]
                            o[b * 16 + 2 * k] = lut[Int(byte & 0x0F)] * scale
                            o[b * 16 + 2 * k + 1] = lut[Int(byte >> 4)] * scale
                        }
                    }
                }
            }
        }
    }

    public func contentHash() -> UInt64 {
        var h = XXH64.hash(codes.bytes)
        h = XXH64.hash(blockScales.bytes, seed: h)
        return XXH64.hash(globalScaleView.bytes, seed: h)
    }

    public func dontNeed() { codes.file.dontNeed(offset: codes.info.offset, count: codes.info.byteCount) }

    public var nvfp4Codes: NVFP4Codes? {
        NVFP4Codes(codes: codes.bytes, blockScales: blockScales.bytes, cols: shape[1], globalScale: globalScale)
    }
}
