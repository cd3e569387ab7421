// Shared building blocks for the codec loops. What the loops inline is branch-free integer or
// float arithmetic so that they stay vectorizable (docs/PERFORMANCE.md: a trapping conversion or a Float
// max-reduction in a loop body stops LLVM from vectorizing it); the rare cases go out of line.

/// Round-half-to-even of `v` to an integer, valid for |v| < 2^22.
///
/// Adding 1.5·2^23 pushes the fraction out of the mantissa using the FPU's own round-to-nearest-even,
/// so this is exactly `torch.round` (and `Float.rounded(.toNearestOrEven)`) on that range. Callers
/// divide by a scale taken from the same row or group's absmax, so |v| stays near the code range;
/// past 2^22 the result keeps its sign up to 1.5·2^23, and ±infinity (a non-finite weight) lands
/// beyond any clamp bound on the right side, so clamped codes stay in range whatever the input.
@inline(__always)
func roundHalfEven(_ v: Float) -> Int32 {
    Int32(bitPattern: (v + 12_582_912.0).bitPattern) &- 0x4B40_0000
}

@inline(__always)
func clamp(_ q: Int32, _ lo: Int32, _ hi: Int32) -> Int32 {
    let a = q < lo ? lo : q
    return a > hi ? hi : a
}

/// max |w[i]| over the finite elements of `w[0..<n]` (NaN and ±infinity are ignored, so a scale
/// derived from it is always finite).
///
/// For non-negative floats the bit pattern is ordered like the value, so this is an integer max
/// over `bits & 0x7FFF_FFFF`, which vectorizes where a Float max-reduction does not. The loop is a
/// bare max: folding the finiteness test into it lets LLVM turn it into a conditional update that
/// it no longer vectorizes, so non-finite values are handled by a second pass only when present.
@inline(__always)
func finiteAbsMax(_ w: UnsafePointer<Float>, _ n: Int) -> Float {
    var m: UInt32 = 0
    for i in 0..<n {
        let a = w[i].bitPattern & 0x7FFF_FFFF
        m = a > m ? a : m
    }
    return m < 0x7F80_0000 ? Float(bitPattern: m) : finiteAbsMaxSlow(w, n)
}

@inline(never)
func finiteAbsMaxSlow(_ w: UnsafePointer<Float>, _ n: Int) -> Float {
    var m: UInt32 = 0
    for i in 0..<n {
        let a = w[i].bitPattern & 0x7FFF_FFFF
        if a < 0x7F80_0000 && a > m { m = a }
    }
    return Float(bitPattern: m)
}

/// The finite range of `w[0..<n]` widened to contain 0: (min(min w, 0), max(max w, 0)).
///
/// Integer min/max over order-preserving keys (see `orderedKey`) vectorizes where Float min/max
/// does not; as in `finiteAbsMax`, non-finite values take a second pass only when present.
@inline(__always)
func rangeWithZero(_ w: UnsafePointer<Float>, _ n: Int) -> (lo: Float, hi: Float) {
    var lo: Int32 = 0, hi: Int32 = 0
    for i in 0..<n {
        let k = orderedKey(w[i].bitPattern)
        lo = k < lo ? k : lo
        hi = k > hi ? k : hi
    }
    // +inf's key is 0x7F80_0000 and -inf's is orderedKey(0xFF80_0000); NaNs lie beyond them.
    if hi >= 0x7F80_0000 || lo <= orderedKey(0xFF80_0000) { return rangeWithZeroSlow(w, n) }
    return (keyToFloat(lo), keyToFloat(hi))
}

@inline(never)
func rangeWithZeroSlow(_ w: UnsafePointer<Float>, _ n: Int) -> (lo: Float, hi: Float) {
    var lo: Int32 = 0, hi: Int32 = 0
    for i in 0..<n where w[i].isFinite {
        let k = orderedKey(w[i].bitPattern)
        lo = min(lo, k)
        hi = max(hi, k)
    }
    return (keyToFloat(lo), keyToFloat(hi))
}

@inline(__always)
func keyToFloat(_ k: Int32) -> Float {
    Float(bitPattern: UInt32(bitPattern: orderedKey(UInt32(bitPattern: k))))
}

/// Order-preserving map from a Float's bits to Int32 (and back: the map is its own inverse).
/// Negative floats get their magnitude bits flipped so that they sort below the positives.
@inline(__always)
func orderedKey(_ bits: UInt32) -> Int32 {
    let b = Int32(bitPattern: bits)
    return b ^ ((b >> 31) & 0x7FFF_FFFF)
}

/// The scale for `absMax` spread over `levels` steps, or 1 where that would be zero (an all-zero
/// row or group, or an absmax so small that the division underflows): codes are then all 0 and
/// decoding stays exact instead of producing NaN from 0/0.
@inline(__always)
func safeScale(absMax: Float, levels: Float) -> Float {
    let s = absMax / levels
    return s > 0 ? s : 1
}
