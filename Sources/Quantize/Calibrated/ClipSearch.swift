/// The `mse` calibration method: for every row (INT8, FP8 per channel) or group (INT4), try
/// ranges shrunk from the absmax and keep the scale that minimises the activation-weighted
/// squared error Σ_j E[x_j²] (w_j − q(w_j))² — the expected output error of that row when input
/// channels are uncorrelated. Outliers then stop stretching the grid for everything else.
public struct ClipSearchEncoder: SegmentEncoder {
    /// E[x_j²] per input column (from calibration), floored so unseen channels still count a little.
    public let importance: [Float]
    /// Fractions of the absmax range tried; 1 keeps round-to-nearest's scale.
    public let clips: [Float]

    public init(importance: [Float], clips: [Float]? = nil) {
        let mean = importance.reduce(0, +) / Float(max(1, importance.count))
        let floor = max(mean * 1e-4, Float.leastNormalMagnitude)
        self.importance = importance.map { max($0.isFinite ? $0 : 0, floor) }
        self.clips = clips ?? GridQuantizer.defaultClips
    }

    public func encode(_ w: UnsafeMutablePointer<Float>, rows n: Int, cols: Int, segment: TensorPlan.Segment, firstRow: Int,
                       blockScales: [Float]?, codes: UnsafeMutableRawPointer, scales: UnsafeMutablePointer<Float>?,
                       zeroPoints: UnsafeMutablePointer<UInt8>?) {
        switch segment.scheme {
        case .fp8Tensor, .bf16, .f16, .f32:
            // One scale for many rows (or no grid): nothing to search per row.
            SegmentCodec.encode(w, rows: n, cols: cols, segment: segment, firstRow: firstRow, blockScales: blockScales,
                                codes: codes, scales: scales, zeroPoints: zeroPoints)
            return
        default: break
        }
        let q = GridQuantizer(scheme: segment.scheme, cols: cols)
        let g = q.group, groups = (cols + g - 1) / g
        importance.withUnsafeBufferPointer { ib in
            let imp = ib.baseAddress!
            for r in 0..<n {
                let row = w + r * cols
                q.clearRow(r, codes: codes)
                for gi in 0..<groups {
                    let j0 = gi * g, j1 = min(cols, j0 + g)
                    let best = q.searchParameters(row + j0, j1 - j0, importance: imp + j0, clips: clips)
                    scales![r * groups + gi] = best.scale
                    if let z = zeroPoints, case .int4(_, false) = segment.scheme { z[r * groups + gi] = UInt8(truncatingIfNeeded: best.zero) }
                    for j in j0..<j1 {
                        q.store(q.quantize(row[j], scale: best.scale, zero: best.zero).0, row: r, col: j, codes: codes)
                    }
                }
            }
        }
    }
}
