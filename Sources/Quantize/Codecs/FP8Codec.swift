import Formats

/// `fp8-tensor` and `fp8-channel`: FP8 E4M3 bytes (`FP8E4M3`), scaled so the absmax maps to 448.
/// Per tensor, the Float32 scale is per block of rows (a tensor, or an SSM head / B-C group with
/// per-head scales) and is measured in a pre-pass; per channel, it is per row.
public struct FP8Codec: QuantCodec, QuantGrid {
    public let perTensor: Bool
    public init(perTensor: Bool) { self.perTensor = perTensor }
    public static func parse(_ text: String) -> Self? {
        text == "fp8-tensor" ? Self(perTensor: true) : text == "fp8-channel" ? Self(perTensor: false) : nil
    }

    public var name: String { perTensor ? "fp8-tensor" : "fp8-channel" }
    public var payloadBits: Int { 8 }
    public var scaledCodeDType: DType? { .f8e4m3 }
    public var codeElement: ElementType { .e4m3 }
    public func codeBytesPerRow(cols: Int) -> Int { cols }
    public func scalesPerRow(cols: Int) -> Int { perTensor ? 0 : 1 }
    public var rowBlockScale: RowBlockScale? {
        perTensor ? RowBlockScale(storage: .scales, scale: { FP8E4M3.scale(absMax: $0) }) : nil
    }
    public func describeScales(rows: Int, cols: Int) -> String { perTensor ? "one scale" : "scales [\(rows)] per row" }

    public func encode(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float,
                       codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        let c = codes.assumingMemoryBound(to: UInt8.self)
        if perTensor {
            let first = rows.lowerBound * cols
            FP8E4M3.encode(w + first, count: rows.count * cols, scale: rowScale, codes: c + first)
        } else {
            FP8E4M3.encodeChannel(w, cols: cols, rows: rows, codes: c, scales: scales!.assumingMemoryBound(to: Float.self))
        }
    }

    public func decode(codes: UnsafeRawPointer, scales: UnsafeRawPointer?, zeroPoints: UnsafePointer<UInt8>?, rowScale: Float,
                       cols: Int, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let c = codes.assumingMemoryBound(to: UInt8.self)
        if perTensor {
            let first = rows.lowerBound * cols
            FP8E4M3.decode(codes: c + first, count: rows.count * cols, scale: rowScale, into: out + first)
        } else {
            FP8E4M3.decodeChannel(codes: c, scales: scales!.assumingMemoryBound(to: Float.self), cols: cols, rows: rows, into: out)
        }
    }

    public func fakeQuant(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float) {
        if perTensor { FP8E4M3.fakeQuant(w + rows.lowerBound * cols, count: rows.count * cols, scale: rowScale) }
        else { FP8E4M3.fakeQuantChannel(w, cols: cols, rows: rows) }
    }

    public var grid: QuantGrid? { self }
    public func group(cols: Int) -> Int { cols }
    public var isGrouped: Bool { false }
    public var usesRowScaleOnly: Bool { perTensor }
    public var codeBits: Int { 8 }

    @inline(__always)
    public func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float, rowScale: Float) -> GridParameters {
        if perTensor { return GridParameters(scale: rowScale) }
        return GridParameters(scale: FP8E4M3.scale(absMax: finiteAbsMax(w, n) * clip))
    }

    @inline(__always)
    public func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) {
        let c = FP8E4M3.encode(w / p.scale)
        return (c, FP8E4M3.decode(c) * p.scale)
    }
}
