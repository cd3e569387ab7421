import COpenBLAS

/// The `gptq` calibration method (Frantar et al., 2022): quantize one input column at a time and
/// spread each column's rounding error over the columns not yet quantized, weighted by the
/// inverse Hessian of the layer's calibration inputs, so the layer's output on that data moves as
/// little as possible.
///
/// Rows are independent given H, so the converter's row chunks and threads work unchanged. Columns
/// go in blocks: within a block errors are applied column by column, and to the rest of the row
/// once per block through sgemm ("lazy batch" updates). INT4 group scales are chosen when the
/// sweep reaches a group's first column, from the already-corrected weights, as in the paper's
/// grouped variant — or, with act-order (`HessianFactor.order`), all up front from the original
/// weights ("static groups"), since the permuted sweep visits a group's columns out of order.
/// INT8 and FP8-per-channel row scales, and fp8-tensor block scales, are always fixed up front.
/// Any codec with a grid (`QuantCodec.grid`) works: MXFP4 and NVFP4 groups are chosen like INT4's.
public struct GPTQEncoder: SegmentEncoder {
    public let factor: HessianFactor
    public let blockSize: Int
    /// Per-input-column weights (the Hessian's diagonal, original order) for choosing scales by
    /// clipping search; nil keeps absmax scales.
    public let importance: [Float]?

    public init(factor: HessianFactor, blockSize: Int = 128, importance: [Float]? = nil) {
        self.factor = factor
        self.blockSize = max(1, blockSize)
        self.importance = importance
    }

    public func encode(_ w: UnsafeMutablePointer<Float>, rows m: Int, cols n: Int, segment: TensorPlan.Segment, firstRow: Int,
                       blockScales: [Float]?, codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?,
                       zeroPoints: UnsafeMutablePointer<UInt8>?) {
        guard let q = GridQuantizer(scheme: segment.scheme, cols: n) else {
            SegmentCodec.encode(w, rows: m, cols: n, segment: segment, firstRow: firstRow, blockScales: blockScales,
                                codes: codes, scales: scales, zeroPoints: zeroPoints)
            return
        }
        precondition(n == factor.cols, "Hessian of \(factor.cols) columns for a weight of \(n)")
        let g = q.group, groups = (n + g - 1) / g
        let isGrouped = q.grid.isGrouped
        // The block scale of each row (fp8-tensor's only scale, NVFP4's global one); 1 for others.
        let block = max(1, segment.blockRows ?? segment.rows.count)
        let rowBlockScale: [Float] = (0..<m).map { r in
            guard let bs = blockScales, !bs.isEmpty else { return 1 }
            return bs[min(bs.count - 1, (firstRow + r) / block)]
        }

        // Per-row parameters fixed before the sweep (per-row and per-block-of-rows scales).
        var rowParams = [GridParameters](repeating: GridParameters(scale: 1), count: m)
        var current = [GridParameters](repeating: GridParameters(scale: 1), count: m)
        for r in 0..<m {
            q.clearRow(r, codes: codes)
            if !isGrouped {
                rowParams[r] = params(q, w + r * n, 0, n, rowBlockScale[r])
                if !q.grid.usesRowScaleOnly { q.storeParameters(rowParams[r], row: r, group: 0, codes: codes, scales: scales, zeroPoints: zeroPoints) }
            }
        }

        // Act-order sweeps a permuted copy; codes still go to the original columns.
        let perm = factor.order
        var staticParams: [GridParameters] = []
        var permuted: UnsafeMutablePointer<Float>?
        if let p = perm {
            if isGrouped {
                staticParams = [GridParameters](repeating: GridParameters(scale: 1), count: m * groups)
                for r in 0..<m {
                    for gi in 0..<groups {
                        let j0 = gi * g, len = min(g, n - j0)
                        let prm = params(q, w + r * n + j0, j0, len, rowBlockScale[r])
                        staticParams[r * groups + gi] = prm
                        q.storeParameters(prm, row: r, group: gi, codes: codes, scales: scales, zeroPoints: zeroPoints)
                    }
                }
            }
            let buf = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
            for r in 0..<m { for k in 0..<n { buf[r * n + k] = w[r * n + p[k]] } }
            permuted = buf
        }
        defer { permuted?.deallocate() }
        let W = permuted ?? w

        let B = blockSize
        let err = UnsafeMutablePointer<Float>.allocate(capacity: m * B)
        defer { err.deallocate() }
        factor.upper.withUnsafeBufferPointer { ub in
            let U = ub.baseAddress!
            var i1 = 0
            while i1 < n {
                let i2 = min(n, i1 + B), bw = i2 - i1
                for i in i1..<i2 {
                    let col = perm?[i] ?? i
                    let gi = col / g
                    if isGrouped && perm == nil && i % g == 0 {
                        let len = min(g, n - i)
                        for r in 0..<m {
                            let p = params(q, W + r * n + i, i, len, rowBlockScale[r])
                            current[r] = p
                            q.storeParameters(p, row: r, group: gi, codes: codes, scales: scales, zeroPoints: zeroPoints)
                        }
                    }
                    let d = U[i * n + i]
                    let urow = U + i * n
                    for r in 0..<m {
                        let row = W + r * n
                        let p = !isGrouped ? rowParams[r] : perm == nil ? current[r] : staticParams[r * groups + gi]
                        let (code, value) = q.quantize(row[i], p)
                        q.store(code, row: r, col: col, codes: codes)
                        let e = (row[i] - value) / d
                        err[r * B + (i - i1)] = e
                        if i + 1 < i2 {
                            for j in (i + 1)..<i2 { row[j] -= e * urow[j] }
                        }
                    }
                }
                if i2 < n {
                    // W[:, i2:] -= Err[:, 0..<bw] · U[i1..<i2, i2:]
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n - i2), Int32(bw),
                                -1, err, Int32(B), U + i1 * n + i2, Int32(n), 1, W + i2, Int32(n))
                }
                i1 = i2
            }
        }
    }

    /// Scale (and zero point) of weights w[0..<len], which sit at original columns j0..<j0+len.
    @inline(__always)
    private func params(_ q: GridQuantizer, _ w: UnsafePointer<Float>, _ j0: Int, _ len: Int, _ rowScale: Float) -> GridParameters {
        guard let imp = importance, !q.grid.usesRowScaleOnly else { return q.parameters(w, len, rowScale: rowScale) }
        return imp.withUnsafeBufferPointer {
            q.searchParameters(w, len, importance: $0.baseAddress! + j0, clips: GridQuantizer.defaultClips, rowScale: rowScale)
        }
    }
}
