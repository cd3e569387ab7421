import Formats

/// Counts NaN and ±Inf in buffers, branch-free so the loops vectorize: the converter runs them
/// over every chunk it reads and every high-precision chunk it writes, and a conversion must not
/// slow down for it. The position of the first one is looked up only when the count is non-zero.
public enum NonFinite {
    /// Exponent-all-ones mask of a dtype's bit pattern, for the float dtypes a checkpoint holds.
    static func exponentMask(_ d: DType) -> UInt32? {
        switch d {
        case .f32: return 0x7F80_0000
        case .bf16: return 0x7F80
        case .f16: return 0x7C00
        default: return nil
        }
    }

    public static func count(_ p: UnsafePointer<Float>, _ n: Int) -> Int {
        count32(UnsafeRawPointer(p).assumingMemoryBound(to: UInt32.self), n, mask: 0x7F80_0000)
    }

    /// Non-finite elements among `n` elements of `dtype` at `p` (0 for integer dtypes).
    public static func count(_ p: UnsafeRawPointer, dtype: DType, _ n: Int) -> Int {
        guard let m = exponentMask(dtype) else { return 0 }
        if dtype.byteSize == 4 { return count32(p.assumingMemoryBound(to: UInt32.self), n, mask: m) }
        return count16(p.assumingMemoryBound(to: UInt16.self), n, mask: UInt16(m))
    }

    /// Index of the first non-finite element, or nil.
    public static func first(_ p: UnsafeRawPointer, dtype: DType, _ n: Int) -> Int? {
        guard let m = exponentMask(dtype) else { return nil }
        if dtype.byteSize == 4 {
            let u = p.assumingMemoryBound(to: UInt32.self)
            return (0..<n).first { u[$0] & m == m }
        }
        let u = p.assumingMemoryBound(to: UInt16.self), m16 = UInt16(m)
        return (0..<n).first { u[$0] & m16 == m16 }
    }

    static func count32(_ u: UnsafePointer<UInt32>, _ n: Int, mask m: UInt32) -> Int {
        var c: UInt32 = 0
        for i in 0..<n { c &+= (u[i] & m == m) ? 1 : 0 }
        return Int(c)
    }

    static func count16(_ u: UnsafePointer<UInt16>, _ n: Int, mask m: UInt16) -> Int {
        var c: UInt32 = 0
        for i in 0..<n { c &+= (u[i] & m == m) ? 1 : 0 }
        return Int(c)
    }
}
