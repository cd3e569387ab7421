/// bfloat16 as its UInt16 bit pattern (Swift has no BF16 type): the top half of a Float32.
public enum BF16Codec {
    /// Round-to-nearest-even; NaN stays NaN (quieted, sign kept) instead of rounding into ±inf,
    /// and values past the largest BF16 round to ±inf as IEEE rounding says.
    @inlinable @inline(__always)
    public static func encode(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        let rounded = UInt16(truncatingIfNeeded: (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16)
        let nan = UInt16(truncatingIfNeeded: u >> 16) | 0x0040
        return (u & 0x7FFF_FFFF) > 0x7F80_0000 ? nan : rounded
    }

    @inlinable @inline(__always)
    public static func decode(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) &<< 16) }

    public static func encode(_ w: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<UInt16>) {
        for i in 0..<count { out[i] = encode(w[i]) }
    }

    public static func decode(_ h: UnsafePointer<UInt16>, count: Int, into out: UnsafeMutablePointer<Float>) {
        for i in 0..<count { out[i] = decode(h[i]) }
    }

    public static func fakeQuant(_ w: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { w[i] = decode(encode(w[i])) }
    }
}
