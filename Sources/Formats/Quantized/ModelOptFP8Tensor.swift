/// A ModelOpt FP8 weight: F8_E4M3 codes [rows, cols] and a Float32 scale per tensor or per row;
/// value = e4m3(code) × scale (`ModelOptLayout`).
public struct ModelOptFP8Tensor: EncodedTensor {
    public let name: String
    public let codes: TensorView
    /// One scale per row (a per-tensor scale repeated).
    public let rowScales: [Float]
    public let perTensor: Bool
    let scaleView: TensorView
    /// Which layout it came from, for `inspect`.
    let origin: String

    init(name: String, codes: TensorView, scale: TensorView, scaleName: String, origin: String = "ModelOpt FP8") throws(FormatError) {
        self.origin = origin
        guard codes.shape.count == 2 else {
            throw FormatError.invalidTensor(file: codes.path, tensor: name, message: "FP8 weight of shape \(codes.shape); expected 2 dimensions")
        }
        let rows = codes.shape[0]
        let s = try positiveScales(scale, name: scaleName)
        switch scale.shape {
        case [], [1]:
            perTensor = true
            rowScales = [Float](repeating: s[0], count: rows)
        case [rows], [rows, 1]:
            perTensor = false
            rowScales = s
        default:
            throw FormatError.invalidTensor(file: scale.path, tensor: scaleName, message:
                "shape \(scale.shape) fits neither a per-tensor scale ([] or [1]) nor a per-channel one ([\(rows)] or [\(rows), 1]) of \(name) \(codes.shape)")
        }
        self.name = name
        self.codes = codes
        scaleView = scale
    }

    public var shape: [Int] { codes.shape }
    public var path: String { codes.path }
    public var codeDType: DType { .f8e4m3 }
    public var byteCount: Int { codes.info.byteCount + scaleView.info.byteCount }
    public var storageDescription: String { "F8_E4M3 × weight_scale \(perTensor ? "per tensor" : "per row") (\(origin))" }

    public func decodeRows(_ rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws(FormatError) {
        let cols = codes.shape[1]
        FloatConversion.convert(UnsafeRawBufferPointer(rebasing: codes.bytes[(rows.lowerBound * cols)..<(rows.upperBound * cols)]),
                                dtype: .f8e4m3, count: rows.count * cols, into: out)
        for (i, r) in rows.enumerated() {
            let s = rowScales[r], p = out + i * cols
            for j in 0..<cols { p[j] *= s }
        }
    }

    public func contentHash() -> UInt64 {
        var h = XXH64.hash(codes.bytes)
        h = XXH64.hash(scaleView.bytes, seed: h)
        return h
    }

    public func dontNeed() { codes.file.dontNeed(offset: codes.info.offset, count: codes.info.byteCount) }
    public func willNeed(bytes: Int) { codes.file.willNeed(offset: codes.info.offset, count: min(bytes, codes.info.byteCount)) }

    public var scaledCodes: ScaledCodes? {
        ScaledCodes(codeElement: .f8e4m3, codes: codes.bytes, cols: codes.shape[1], rowScales: rowScales)
    }
}
