#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Formats

/// ggml's MXFP4 block (GGUF type 39), scheme `gguf-mxfp4`: 32 elements, one E8M0 exponent byte e,
/// then 16 bytes of E2M1 codes (element j low nibble of byte j, j + 16 high nibble); value =
/// kvalues[q] · 2^(e − 128), where kvalues are the E2M1 values doubled (0, 1, 2, 3, 4, 6, 8, 12
/// and their negatives for codes 8–15) — the same numbers as e2m1(q) · 2^(e − 127).
///
/// Reference rule (`quantize_row_mxfp4_ref`): e = floor(log2f(amax)) − 2 + 127 (0 for an all-zero
/// block), each code the first of the 16 codes whose value is nearest w (ties go to the lower code,
/// i.e. the smaller magnitude, and a negative w that rounds to zero gets +0).
///
/// Why this is not our `mxfp4` scheme although the values mean the same: (1) ties — ggml rounds a
/// midpoint toward the smaller magnitude (0.75 → 0.5, 2.5 → 2), `mxfp4` to the even code
/// (0.75 → 1, 2.5 → 2); (2) the exponent comes from `log2f`, which rounds up to the next integer
/// for an amax just below a power of two, where `mxfp4` reads the float's exponent bits; (3) small
/// negatives encode as +0 here, −0 in `mxfp4`; (4) codes sit in ggml's j / j + 16 nibble order
/// inside 17-byte blocks, not in a separate scale section. ggml's decoder also reads e = 255 as
/// 2^127, not NaN; we follow it. An amax below 2^−125 would make ggml's exponent negative
/// (undefined in C); we store 0.
public struct MXFP4Block: GGMLBlockCodec {
    public init() {}
    public static var type: GGMLType { .mxfp4 }
    public static var schemeName: String { "gguf-mxfp4" }
    public static var codeBits: Int { 4 }

    /// E2M1 value of code i doubled, as ggml's `kvalues_mxfp4` (a constant table in the function).
    @inline(__always)
    static func kvalue(_ i: Int) -> Float {
        let k: (Float, Float, Float, Float, Float, Float, Float, Float,
                Float, Float, Float, Float, Float, Float, Float, Float) =
            (0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12)
        return withUnsafeBytes(of: k) { $0.load(fromByteOffset: 4 * (i & 15), as: Float.self) }
    }

    /// Half of 2^(e − 127) as ggml computes it (`GGML_E8M0_TO_FP32_HALF`): subnormal for e < 2.
    @inline(__always)
    public static func halfScale(_ e: UInt8) -> Float {
        Float(bitPattern: e < 2 ? UInt32(0x0020_0000) << UInt32(e) : (UInt32(e) - 1) << 23)
    }

    /// ggml's exponent byte for a block whose largest magnitude is `amax`.
    @inline(__always)
    public static func exponent(amax: Float) -> UInt8 {
        guard amax > 0, amax.isFinite else { return 0 }
        let e = floorf(log2f(amax)) - 2 + 127
        return e <= 0 ? 0 : e >= 254 ? 254 : UInt8(e)
    }

    @inline(__always)
    public static func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float) -> GridParameters {
        let e = exponent(amax: finiteAbsMax(w, n) * clip)
        return GridParameters(scale: halfScale(e), stored: e)
    }

    @inline(__always)
    public static func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) {
        var best = 0
        var bestErr = abs(kvalue(0) * p.scale - w)
        for i in 1..<16 {
            let err = abs(kvalue(i) * p.scale - w)
            if err < bestErr { best = i; bestErr = err }
        }
        return (UInt8(truncatingIfNeeded: best), kvalue(best) * p.scale)
    }

    /// The same search as `quantize` with the 16 candidate values computed once per block; the
    /// best so far stays in registers, and a code replaces it only when strictly nearer, which
    /// keeps ggml's first-minimum rule.
    @inline(__always)
    public static func quantizeBlock(_ w: UnsafePointer<Float>, _ n: Int, _ p: GridParameters,
                                     _ codes: UnsafeMutablePointer<UInt8>) {
        let d = p.scale
        let c = (kvalue(0) * d, kvalue(1) * d, kvalue(2) * d, kvalue(3) * d, kvalue(4) * d, kvalue(5) * d,
                 kvalue(6) * d, kvalue(7) * d, kvalue(8) * d, kvalue(9) * d, kvalue(10) * d, kvalue(11) * d,
                 kvalue(12) * d, kvalue(13) * d, kvalue(14) * d, kvalue(15) * d)
        withUnsafeBytes(of: c) { cb in
            let cand = cb.baseAddress!.assumingMemoryBound(to: Float.self)
            for j in 0..<n {
                let x = w[j]
                var be = abs(cand[0] - x), bi: UInt8 = 0
                for i in 1..<16 {
                    let err = abs(cand[i] - x)
                    let better = err < be
                    be = better ? err : be
                    bi = better ? UInt8(truncatingIfNeeded: i) : bi
                }
                codes[j] = bi
            }
        }
    }

    @inline(__always)
    public static func value(_ code: UInt8, _ p: GridParameters) -> Float { kvalue(Int(code)) * p.scale }

    @inline(__always)
    public static func storeHeader(_ p: GridParameters, _ block: UnsafeMutablePointer<UInt8>) { block[0] = p.stored }

    @inline(__always)
    public static func storeCode(_ code: UInt8, _ j: Int, _ block: UnsafeMutablePointer<UInt8>) { storeNibble(code, j, block + 1) }

    @inline(__always)
    public static func pack(_ codes: UnsafePointer<UInt8>, _ block: UnsafeMutablePointer<UInt8>) { packNibbles(codes, block + 1) }

    static func decode(_ b: UnsafePointer<UInt8>, _ blocks: Int, _ y: UnsafeMutablePointer<Float>) {
        var table = [Float](repeating: 0, count: 16)
        for i in 0..<16 { table[i] = kvalue(i) }
        table.withUnsafeBufferPointer { tb in
            let t = tb.baseAddress!
            for i in 0..<blocks {
                let x = b + i * 17, o = y + i * 32, qs = x + 1
                let d = halfScale(x[0])
                for j in 0..<16 {
                    o[j] = t[Int(qs[j] & 0x0F)] * d
                    o[j + 16] = t[Int(qs[j] >> 4)] * d
                }
            }
        }
    }
}
