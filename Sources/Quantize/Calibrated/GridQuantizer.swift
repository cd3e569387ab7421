/// Puts single weights on a scheme's grid (`QuantCodec.grid`) with a scale (and zero point)
/// chosen by the caller, and writes the codes exactly where the round-to-nearest codecs put them.
/// GPTQ picks each group's scale from weights it has already corrected, and clipping search tries
/// scales below the absmax one, so neither can use the codecs' own scale rule.
struct GridQuantizer {
    let scheme: QuantScheme
    let grid: QuantGrid
    let cols: Int
    /// Code bytes of one row.
    let rowBytes: Int
    /// Input columns per scale (`cols` for a scale per row).
    let group: Int

    /// nil for schemes that are not quantized (bf16, f16, f32).
    init?(scheme: QuantScheme, cols: Int) {
        guard let g = scheme.codec.grid else { return nil }
        self.scheme = scheme; self.grid = g; self.cols = cols
        rowBytes = scheme.codec.codeBytesPerRow(cols: cols)
        group = g.isGrouped ? g.group(cols: cols) : cols
    }

    /// Scale and zero point of one run of weights (a row, a group), with the range shrunk by
    /// `clip` (1 = the codecs' own rule, bit for bit).
    @inline(__always)
    func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float = 1, rowScale: Float = 1) -> GridParameters {
        grid.parameters(w, n, clip: clip, rowScale: rowScale)
    }

    /// The parameters among `clips` (fractions of the full range) with the least importance-weighted
    /// squared error over the run; 1 is always tried, so the result is never worse than absmax.
    func searchParameters(_ w: UnsafePointer<Float>, _ n: Int, importance imp: UnsafePointer<Float>,
                          clips: [Float], rowScale: Float = 1) -> GridParameters {
        var best = parameters(w, n, rowScale: rowScale)
        var bestErr = weightedError(w, n, best, imp)
        for c in clips where c < 1 {
            let p = parameters(w, n, clip: c, rowScale: rowScale)
            let e = weightedError(w, n, p, imp)
            if e < bestErr { bestErr = e; best = p }
        }
        return best
    }

    @inline(__always)
    func weightedError(_ w: UnsafePointer<Float>, _ n: Int, _ p: GridParameters, _ imp: UnsafePointer<Float>) -> Float {
        var e: Float = 0
        for j in 0..<n {
            let d = w[j] - grid.quantize(w[j], p).1
            e += imp[j] * d * d
        }
        return e
    }

    static let defaultClips: [Float] = stride(from: 1.0, through: 0.5, by: -0.025).map { Float($0) }

    /// (code, the value it decodes to).
    @inline(__always)
    func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) { grid.quantize(w, p) }

    /// Clears a row's code bytes (4-bit rows of odd width end in a half-used byte that must be 0).
    @inline(__always)
    func clearRow(_ r: Int, codes: UnsafeMutableRawPointer) {
        (codes + r * rowBytes).initializeMemory(as: UInt8.self, repeating: 0, count: rowBytes)
    }

    /// Stores element (r, j)'s code where the codec keeps it; the row must have been cleared first.
    @inline(__always)
    func store(_ code: UInt8, row r: Int, col j: Int, codes: UnsafeMutableRawPointer) {
        grid.storeCode(code, row: r, col: j, rowBytes: rowBytes, codes: codes)
    }

    /// Stores the parameters of group `group` of row `row` (group 0 for a per-row scale): into the
    /// scale and zero-point sections, or into the code blocks for formats that keep them there.
    @inline(__always)
    func storeParameters(_ p: GridParameters, row: Int, group: Int, codes: UnsafeMutableRawPointer,
                         scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        let groups = grid.isGrouped ? (cols + self.group - 1) / self.group : 1
        grid.storeParameters(p, row: row, group: group, groupsPerRow: groups, rowBytes: rowBytes, codes: codes,
                             scales: scales, zeroPoints: zeroPoints)
    }
}
