import Formats

/// Finds NaN and ±Inf in buffers. The converter runs `any` over every chunk it reads and every
/// high-precision chunk it writes, so it is an unsigned max over the magnitude bits (non-finite ⇔
/// exponent all ones ⇔ magnitude ≥ the infinity pattern), which vectorizes; the position of the
/// first one is looked up only when there is one.
public enum NonFinite {
    /// Bit pattern of +infinity in a dtype, for the float dtypes a checkpoint holds.
    static func infinity(_ d: DType) -> UInt32? {
        switch d {
        case .f32: return 0x7F80_0000
        case .bf16: return 0x7F80
        case .f16: return 0x7C00
        default: return nil
        }
    }

    public static func any(_ p: UnsafePointer<Float>, _ n: Int) -> Bool {
        max32(UnsafeRawPointer(p).assumingMemoryBound(to: UInt32.self), n) >= 0x7F80_0000
    }

    /// Whether any of `n` elements of `dtype` at `p` is non-finite (false for integer dtypes).
    public static func any(_ p: UnsafeRawPointer, dtype: DType, _ n: Int) -> Bool {
        guard let inf = infinity(dtype) else { return false }
        if dtype.byteSize == 4 { return max32(p.assumingMemoryBound(to: UInt32.self), n) >= inf }
        return UInt32(max16(p.assumingMemoryBound(to: UInt16.self), n)) >= inf
    }

    /// Index of the first non-finite element, or nil.
    public static func first(_ p: UnsafeRawPointer, dtype: DType, _ n: Int) -> Int? {
        guard let inf = infinity(dtype) else { return nil }
        if dtype.byteSize == 4 {
            let u = p.assumingMemoryBound(to: UInt32.self)
            return (0..<n).first { u[$0] & 0x7FFF_FFFF >= inf }
        }
        let u = p.assumingMemoryBound(to: UInt16.self)
        return (0..<n).first { UInt32(u[$0] & 0x7FFF) >= inf }
    }

    /// Largest magnitude bit pattern (sign cleared).
    static func max32(_ u: UnsafePointer<UInt32>, _ n: Int) -> UInt32 {
        var m: UInt32 = 0
        for i in 0..<n {
            let a = u[i] & 0x7FFF_FFFF
            m = a > m ? a : m
        }
        return m
    }

    static func max16(_ u: UnsafePointer<UInt16>, _ n: Int) -> UInt16 {
        var m: UInt16 = 0
        for i in 0..<n {
            let a = u[i] & 0x7FFF
            m = a > m ? a : m
        }
        return m
    }
}
