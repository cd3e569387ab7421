import COpenBLAS

/// What calibration learns about the inputs of one linear weight: per input channel the sum of
/// squares and the absolute maximum, the number of rows seen, and optionally the Gram matrix XᵀX
/// (GPTQ's Hessian, up to a factor). Sums rather than means, so statistics from separate runs or
/// batches merge by addition, like llama.cpp's imatrix.
public final class LinearStats {
    public let width: Int
    public private(set) var rows: Int = 0
    public private(set) var sumSquares: [Double]
    public private(set) var absMax: [Float]
    /// Row-major [width, width]; only the upper triangle is accumulated (ssyrk) until `gramMatrix`.
    public private(set) var gram: [Float]?

    public init(width: Int, gram: Bool) {
        self.width = width
        sumSquares = [Double](repeating: 0, count: width)
        absMax = [Float](repeating: 0, count: width)
        self.gram = gram ? [Float](repeating: 0, count: width * width) : nil
    }

    public init(width: Int, rows: Int, sumSquares: [Double], absMax: [Float], gram: [Float]?) {
        precondition(sumSquares.count == width && absMax.count == width && (gram?.count ?? width * width) == width * width)
        self.width = width; self.rows = rows; self.sumSquares = sumSquares; self.absMax = absMax; self.gram = gram
    }

    public func add(_ x: UnsafePointer<Float>, rows n: Int) {
        guard n > 0 else { return }
        let w = width
        // Float partial sums per row block keep the inner loop vectorized; Double across blocks
        // keeps tens of thousands of rows exact enough.
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: w)
        defer { partial.deallocate() }
        sumSquares.withUnsafeMutableBufferPointer { ss in
            absMax.withUnsafeMutableBufferPointer { am in
                let s = ss.baseAddress!, a = am.baseAddress!
                var r0 = 0
                while r0 < n {
                    let r1 = min(n, r0 + 256)
                    partial.update(repeating: 0, count: w)
                    for r in r0..<r1 {
                        let row = x + r * w
                        for j in 0..<w {
                            let v = row[j]
                            partial[j] += v * v
                            let m = abs(v)
                            a[j] = m > a[j] ? m : a[j]
                        }
                    }
                    for j in 0..<w { s[j] += Double(partial[j]) }
                    r0 = r1
                }
            }
        }
        if gram != nil {
            gram!.withUnsafeMutableBufferPointer { g in
                cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(w), Int32(n), 1, x, Int32(w), 1,
                            g.baseAddress, Int32(w))
            }
        }
        rows = rows.saturatingAdd(n)
    }

    /// Adds another run's statistics of the same weight.
    public func merge(_ o: LinearStats) {
        precondition(o.width == width)
        rows = rows.saturatingAdd(o.rows)
        for j in 0..<width { sumSquares[j] += o.sumSquares[j]; absMax[j] = max(absMax[j], o.absMax[j]) }
        if let og = o.gram {
            if gram == nil { gram = og } else { for i in 0..<(width * width) { gram![i] += og[i] } }
        } else {
            gram = nil   // a Gram matrix that misses some rows would be wrong, not just noisier
        }
    }

    /// Adds `weight` × another run's sums (rows count as `weight` rows each).
    public func merge(_ o: LinearStats, weight: Double) {
        precondition(o.width == width)
        if weight == 1 { merge(o); return }
        rows = rows.saturatingAdd(Int(exactly: (Double(o.rows) * weight).rounded()) ?? .max)
        for j in 0..<width { sumSquares[j] += o.sumSquares[j] * weight; absMax[j] = max(absMax[j], o.absMax[j]) }
        if let og = o.gram, gram != nil {
            let w = Float(weight)
            for i in 0..<(width * width) { gram![i] += og[i] * w }
        } else {
            gram = nil
        }
    }

    public func copy() -> LinearStats {
        LinearStats(width: width, rows: rows, sumSquares: sumSquares, absMax: absMax, gram: gram)
    }

    /// E[x_j²] per input channel.
    public var meanSquares: [Float] {
        let n = Double(max(1, rows))
        return sumSquares.map { Float($0 / n) }
    }

    /// The full symmetric Gram matrix (both triangles), or nil when it was not collected.
    public var gramMatrix: [Float]? {
        guard var g = gram else { return nil }
        let w = width
        for i in 0..<w { for j in 0..<i { g[i * w + j] = g[j * w + i] } }
        return g
    }
}

extension Int {
    /// Counters of merged statistics files stop at Int.max instead of trapping: a file claiming
    /// 2⁶³ rows is odd but its means are still usable, and a trap would leave nothing useful.
    func saturatingAdd(_ o: Int) -> Int {
        let (r, overflow) = addingReportingOverflow(o)
        return overflow ? (o > 0 ? .max : .min) : r
    }
}
