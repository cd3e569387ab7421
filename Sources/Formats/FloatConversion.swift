#if arch(x86_64) && os(Linux)
import _Builtin_intrinsics.intel
import Synchronization
#endif

/// Widening of stored weight types to Float32.
///
/// These loops are the input side of every conversion and forward pass, so they are written as
/// plain loops over raw pointers that LLVM vectorizes (see docs/PERFORMANCE.md): no Array indexing, no
/// trapping conversions. A misaligned source (safetensors only promises byte alignment) takes an
/// unaligned-load path instead of binding memory to a type it is not aligned for.
///
/// Large outputs are written with non-temporal stores where the CPU has them: a plain store to a
/// line not in cache first reads the line (write-allocate), so widening 2 bytes to 4 moves 10
/// bytes per element through memory instead of 6 — conversion then runs at 0.4× memcpy instead
/// of about 1×. Small outputs keep plain stores, so the consumer finds them in cache.
public enum FloatConversion {
    /// Outputs at least this many elements (8 MB of Float, a quarter of this machine's L3) bypass the cache.
    public static let streamingThreshold = 1 << 21

    public static func convert(_ src: UnsafeRawBufferPointer, dtype: DType, count n: Int,
                               into out: UnsafeMutablePointer<Float>) {
        guard n > 0, let base = src.baseAddress else { return }
        precondition(src.count >= n * dtype.byteSize)
        switch dtype {
        case .bf16: if n < streamingThreshold || !streamBF16(base, n, out) { bf16(base, n, out) }
        case .f16: if n < streamingThreshold || !streamF16(base, n, out) { f16(base, n, out) }
        case .f32:
            UnsafeMutableRawPointer(out).copyMemory(from: base, byteCount: n * 4)
        case .f64:
            for i in 0..<n { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
        case .f8e4m3: e4m3(base.assumingMemoryBound(to: UInt8.self), n, out)
        case .f8e5m2: e5m2(base.assumingMemoryBound(to: UInt8.self), n, out)
        case .bool, .u8: for i in 0..<n { out[i] = Float(base.load(fromByteOffset: i, as: UInt8.self)) }
        case .i8: for i in 0..<n { out[i] = Float(base.load(fromByteOffset: i, as: Int8.self)) }
        case .u16: for i in 0..<n { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
        case .i16: for i in 0..<n { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)) }
        case .u32: for i in 0..<n { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }
        case .i32: for i in 0..<n { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)) }
        case .u64: for i in 0..<n { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
        case .i64: for i in 0..<n { out[i] = Float(base.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
        }
    }

    /// Non-temporal BF16 widening; false where unavailable. The package builds for haswell on
    /// Linux (Package.swift), which is what makes these AVX2 intrinsics safe to call there.
    static func streamBF16(_ base: UnsafeRawPointer, _ n: Int, _ out: UnsafeMutablePointer<Float>) -> Bool {
        #if arch(x86_64) && os(Linux)
        // Plain stores up to the first 32-byte boundary of the output, which streaming stores need.
        let head = min(n, ((32 - Int(bitPattern: out) & 31) & 31) / 4)
        bf16(base, head, out)
        let o = UnsafeMutableRawPointer(out + head)
        let s = base + 2 * head
        let m = (n - head) / 8 * 8
        var i = 0
        while i < m {
            let v = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(s.advanced(by: 2 * i).assumingMemoryBound(to: __m128i.self))), 16)
            _mm256_stream_si256(o.advanced(by: 4 * i).assumingMemoryBound(to: __m256i.self), v)
            i += 8
        }
        bf16(s + 2 * m, n - head - m, out + head + m)
        publishStreamedStores()
        return true
        #else
        return false
        #endif
    }

    static func streamF16(_ base: UnsafeRawPointer, _ n: Int, _ out: UnsafeMutablePointer<Float>) -> Bool {
        #if arch(x86_64) && os(Linux)
        let head = min(n, ((32 - Int(bitPattern: out) & 31) & 31) / 4)
        f16(base, head, out)
        let o = out + head
        let s = base + 2 * head
        let m = (n - head) / 8 * 8
        var i = 0
        while i < m {
            let v = _mm256_cvtph_ps(_mm_loadu_si128(s.advanced(by: 2 * i).assumingMemoryBound(to: __m128i.self)))
            _mm256_stream_ps(o + i, v)
            i += 8
        }
        f16(s + 2 * m, n - head - m, out + head + m)
        publishStreamedStores()
        return true
        #else
        return false
        #endif
    }

    /// Streaming stores are weakly ordered: fence them so another thread handed the buffer sees
    /// every element. (Swift cannot call `_mm_sfence`, an un-inlinable builtin; a sequentially
    /// consistent fence compiles to a locked instruction, which also drains write-combining buffers.)
    @inline(__always)
    static func publishStreamedStores() {
        #if arch(x86_64) && os(Linux)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        #endif
    }

    @inline(__always)
    static func bf16(_ base: UnsafeRawPointer, _ n: Int, _ out: UnsafeMutablePointer<Float>) {
        if Int(bitPattern: base) & 1 == 0 {
            let s = base.assumingMemoryBound(to: UInt16.self)
            let o = UnsafeMutableRawPointer(out).assumingMemoryBound(to: UInt32.self)
            for i in 0..<n { o[i] = UInt32(s[i]) &<< 16 }
        } else {
            for i in 0..<n {
                out[i] = Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) &<< 16)
            }
        }
    }

    @inline(__always)
    static func f16(_ base: UnsafeRawPointer, _ n: Int, _ out: UnsafeMutablePointer<Float>) {
        if Int(bitPattern: base) & 1 == 0 {
            let s = base.assumingMemoryBound(to: Float16.self)
            for i in 0..<n { out[i] = Float(s[i]) }
        } else {
            for i in 0..<n {
                out[i] = Float(Float16(bitPattern: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        }
    }

    /// FP8 goes through Float16, which the hardware widens 8 lanes at a time: a table lookup is a
    /// gather and does not vectorize.
    /// E5M2 is exactly the high byte of an F16 (same exponent bias, infinities and NaNs).
    @inline(__always)
    static func e5m2(_ s: UnsafePointer<UInt8>, _ n: Int, _ out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { out[i] = Float(Float16(bitPattern: UInt16(s[i]) &<< 8)) }
    }

    /// E4M3's seven magnitude bits placed at the top of an F16's are the same number scaled by
    /// 2^-8 (bias 7 against 15), subnormals included; only S.1111.111 (NaN, E4M3 has no
    /// infinities) needs its own case.
    @inline(__always)
    static func e4m3(_ s: UnsafePointer<UInt8>, _ n: Int, _ out: UnsafeMutablePointer<Float>) {
        for i in 0..<n {
            let b = s[i]
            let h = UInt16(b & 0x80) &<< 8 | UInt16(b & 0x7F) &<< 7
            let v = Float(Float16(bitPattern: h)) * 256
            out[i] = b & 0x7F == 0x7F ? .nan : v
        }
    }

    @inline(__always)
    static func table(_ s: UnsafePointer<UInt8>, _ n: Int, _ out: UnsafeMutablePointer<Float>, _ t: [Float]) {
        t.withUnsafeBufferPointer { tb in
            let tp = tb.baseAddress!
            for i in 0..<n { out[i] = tp[Int(s[i])] }
        }
    }

    /// float8_e4m3fn: bias 7, no infinities, S.1111.111 is NaN.
    public static let e4m3Table: [Float] = (0..<256).map { c in
        let sign: Float = c & 0x80 != 0 ? -1 : 1
        let e = (c >> 3) & 0xF, m = c & 7
        if e == 0xF && m == 7 { return .nan }
        if e == 0 { return sign * Float(m) / 8 * 0x1p-6 }
        return sign * (1 + Float(m) / 8) * Float(sign: .plus, exponent: e - 7, significand: 1)
    }

    /// float8_e5m2: bias 15, IEEE-style infinities and NaNs.
    public static let e5m2Table: [Float] = (0..<256).map { c in
        let sign: Float = c & 0x80 != 0 ? -1 : 1
        let e = (c >> 2) & 0x1F, m = c & 3
        if e == 0x1F { return m == 0 ? sign * .infinity : .nan }
        if e == 0 { return sign * Float(m) / 4 * 0x1p-14 }
        return sign * (1 + Float(m) / 4) * Float(sign: .plus, exponent: e - 15, significand: 1)
    }
}
