import Formats

/// `int8`: INT8 symmetric, one Float32 scale per row (`Int8Codec`).
public struct Int8ChannelCodec: QuantCodec, QuantGrid {
    public init() {}
    public static func parse(_ text: String) -> Self? { text == "int8" || text == "int8-channel" ? Self() : nil }

    public var name: String { "int8" }
    public var payloadBits: Int { 8 }
    public var codeElement: ElementType { .i8 }
    public func codeBytesPerRow(cols: Int) -> Int { cols }
    public func scalesPerRow(cols: Int) -> Int { 1 }
    public func describeScales(rows: Int, cols: Int) -> String { "scales [\(rows)] per row" }

    public func encode(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float,
                       codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        Int8Codec.encode(w, cols: cols, rows: rows, codes: codes.assumingMemoryBound(to: Int8.self),
                         scales: scales!.assumingMemoryBound(to: Float.self))
    }

    public func decode(codes: UnsafeRawPointer, scales: UnsafeRawPointer?, zeroPoints: UnsafePointer<UInt8>?, rowScale: Float,
                       cols: Int, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        Int8Codec.decode(codes: codes.assumingMemoryBound(to: Int8.self), scales: scales!.assumingMemoryBound(to: Float.self),
                         cols: cols, rows: rows, into: out)
    }

    public func fakeQuant(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float) {
        Int8Codec.fakeQuant(w, cols: cols, rows: rows)
    }

    public var grid: QuantGrid? { self }
    public func group(cols: Int) -> Int { cols }
    public var isGrouped: Bool { false }
    public var codeBits: Int { 8 }

    @inline(__always)
    public func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float, rowScale: Float) -> GridParameters {
        GridParameters(scale: safeScale(absMax: finiteAbsMax(w, n) * clip, levels: 127))
    }

    @inline(__always)
    public func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) {
        let q = clamp(roundHalfEven(w / p.scale), -127, 127)
        return (UInt8(truncatingIfNeeded: q), Float(q) * p.scale)
    }
}
