/// The `mse` calibration method: for every row (INT8, FP8 per channel) or group (INT4, MXFP4,
/// NVFP4), try
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
                       blockScales: [Float]?, codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?,
                       zeroPoints: UnsafeMutablePointer<UInt8>?) {
        // No grid, or one scale for many rows: nothing to search per row.
        guard let q = GridQuantizer(scheme: segment.scheme, cols: cols), !q.grid.usesRowScaleOnly else {
            SegmentCodec.encode(w, rows: n, cols: cols, segment: segment, firstRow: firstRow, blockScales: blockScales,
                                codes: codes, scales: scales, zeroPoints: zeroPoints)
            return
        }
        let g = q.group, groups = (cols + g - 1) / g
        let block = max(1, segment.blockRows ?? segment.rows.count)
        importance.withUnsafeBufferPointer { ib in
            let imp = ib.baseAddress!
            for r in 0..<n {
                let row = w + r * cols
                // NVFP4's per-tensor (per-head) global scale, under the searched block scales.
                var rowScale: Float = 1
                if let bs = blockScales, !bs.isEmpty { rowScale = bs[min(bs.count - 1, (firstRow + r) / block)] }
                q.clearRow(r, codes: codes)
                for gi in 0..<groups {
                    let j0 = gi * g, j1 = min(cols, j0 + g)
                    let best = q.searchParameters(row + j0, j1 - j0, importance: imp + j0, clips: clips, rowScale: rowScale)
                    q.storeParameters(best, row: r, group: gi, codes: codes, scales: scales, zeroPoints: zeroPoints)
                    for j in j0..<j1 {
                        q.store(q.quantize(row[j], best).0, row: r, col: j, codes: codes)
                    }
                }
            }
        }
    }
}
