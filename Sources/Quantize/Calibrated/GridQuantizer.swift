/// Puts single weights on a scheme's grid with a scale (and zero point) chosen by the caller, and
/// writes the codes exactly where the round-to-nearest codecs put them. GPTQ picks each group's
/// scale from weights it has already corrected, and clipping search tries scales below the
/// absmax one, so neither can use the codecs' own scale rule.
struct GridQuantizer {
    let scheme: QuantScheme
    let cols: Int

    /// Scale and zero point of one run of weights (a row, a group), with the range shrunk by
    /// `clip` (1 = the codecs' own rule, bit for bit).
    @inline(__always)
    func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float = 1) -> (scale: Float, zero: Int32) {
        switch scheme {
        case .int8Channel: return (safeScale(absMax: finiteAbsMax(w, n) * clip, levels: 127), 0)
        case .int4(_, true): return (safeScale(absMax: finiteAbsMax(w, n) * clip, levels: 7), 0)
        case .int4(_, false):
            if clip == 1 { return Int4Codec.asymmetricParameters(w, n) }
            let (lo, hi) = rangeWithZero(w, n)
            let s = (hi * clip - lo * clip) / 15
            guard s > 0, s.isFinite else { return (1, 0) }
            return (s, clamp(roundHalfEven(-(lo * clip) / s), 0, 15))
        case .fp8Channel, .fp8Tensor: return (FP8E4M3.scale(absMax: finiteAbsMax(w, n) * clip), 0)
        case .bf16, .f16, .f32: return (1, 0)
        }
    }

    /// The parameters among `clips` (fractions of the full range) with the least importance-weighted
    /// squared error over the run; 1 is always tried, so the result is never worse than absmax.
    func searchParameters(_ w: UnsafePointer<Float>, _ n: Int, importance imp: UnsafePointer<Float>,
                          clips: [Float]) -> (scale: Float, zero: Int32) {
        var best = parameters(w, n)
        var bestErr = weightedError(w, n, best, imp)
        for c in clips where c < 1 {
            let p = parameters(w, n, clip: c)
            let e = weightedError(w, n, p, imp)
            if e < bestErr { bestErr = e; best = p }
        }
        return best
    }

    @inline(__always)
    func weightedError(_ w: UnsafePointer<Float>, _ n: Int, _ p: (scale: Float, zero: Int32), _ imp: UnsafePointer<Float>) -> Float {
        var e: Float = 0
        for j in 0..<n {
            let d = w[j] - quantize(w[j], scale: p.scale, zero: p.zero).1
            e += imp[j] * d * d
        }
        return e
    }

    static let defaultClips: [Float] = stride(from: 1.0, through: 0.5, by: -0.025).map { Float($0) }

    /// (code, the value it decodes to).
    @inline(__always)
    func quantize(_ w: Float, scale s: Float, zero: Int32) -> (UInt8, Float) {
        switch scheme {
        case .int8Channel:
            let q = clamp(roundHalfEven(w / s), -127, 127)
            return (UInt8(truncatingIfNeeded: q), Float(q) * s)
        case .int4(_, true):
            let q = clamp(roundHalfEven(w / s), -8, 7)
            return (UInt8(truncatingIfNeeded: q) & 0x0F, Float(q) * s)
        case .int4(_, false):
            let q = clamp(roundHalfEven(w / s) &+ zero, 0, 15)
            return (UInt8(truncatingIfNeeded: q), Float(q &- zero) * s)
        case .fp8Channel, .fp8Tensor:
            let c = FP8E4M3.encode(w / s)
            return (c, FP8E4M3.decode(c) * s)
        case .bf16, .f16, .f32:
            preconditionFailure("high-precision schemes are not quantized element by element")
        }
    }

    /// Code bytes of one row.
    var rowBytes: Int { scheme.layout(rows: 1, cols: cols).codeBytesPerRow }

    /// Clears a row's code bytes (INT4 rows of odd width end in a half-used byte that must be 0).
    @inline(__always)
    func clearRow(_ r: Int, codes: UnsafeMutableRawPointer) {
        (codes + r * rowBytes).initializeMemory(as: UInt8.self, repeating: 0, count: rowBytes)
    }

    /// Stores element (r, j)'s code; the row must have been cleared first.
    @inline(__always)
    func store(_ code: UInt8, row r: Int, col j: Int, codes: UnsafeMutableRawPointer) {
        let b = codes.assumingMemoryBound(to: UInt8.self)
        switch scheme {
        case .int4:
            let p = b + r * rowBytes + (j >> 1)
            p.pointee |= (j & 1) == 0 ? code : code << 4
        default:
            b[r * cols + j] = code
        }
    }

    /// Scale/zero-point slots per row (1 for per-row schemes, groups for INT4, 0 for fp8-tensor).
    var group: Int {
        if case let .int4(g, _) = scheme { return g }
        return cols
    }
}
