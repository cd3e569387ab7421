/// IEEE binary16 as its UInt16 bit pattern, through Swift's Float16 (hardware F16C conversions
/// with the package's haswell target): round-to-nearest-even, overflow to ±inf, NaN kept.
public enum F16Codec {
    @inlinable @inline(__always)
    public static func encode(_ x: Float) -> UInt16 { Float16(x).bitPattern }

    @inlinable @inline(__always)
    public static func decode(_ h: UInt16) -> Float { Float(Float16(bitPattern: h)) }

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
