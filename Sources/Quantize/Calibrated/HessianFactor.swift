import COpenBLAS

/// The factor GPTQ works with: U upper-triangular with H⁻¹ = UᵀU, where H = XᵀX + λI is the
/// (damped) Gram matrix of a linear layer's calibration inputs.
///
/// Factorised in Double through LAPACK: Gram matrices of real activations are badly conditioned,
/// and a failed factorisation is retried with ten times the damping rather than producing NaN.
public struct HessianFactor: Sendable {
    public let cols: Int
    /// Row-major [cols, cols]; only the upper triangle is meaningful.
    public let upper: [Float]
    /// Damping actually used, as a fraction of the mean diagonal.
    public let damping: Double
    /// Act-order: the sweep's k-th column is original column `order[k]` (largest Hessian diagonal
    /// first, so the loudest inputs are quantized while the most columns remain to absorb their
    /// error). `upper` is then the factor of the permuted Hessian. nil = natural order.
    public let order: [Int]?

    public enum Failure: Error, CustomStringConvertible {
        case notPositiveDefinite(cols: Int)
        public var description: String {
            switch self {
            case .notPositiveDefinite(let n): return "the \(n)×\(n) calibration Hessian is not positive definite even with heavy damping"
            }
        }
    }

    /// `gram`: XᵀX summed over calibration rows, row-major [cols, cols], symmetric (both triangles).
    public init(gram: UnsafePointer<Float>, cols n: Int, damping: Double = 0.01, actOrder: Bool = false) throws {
        var perm: [Int]?
        if actOrder {
            perm = (0..<n).sorted { a, b in
                let da = gram[a * n + a], db = gram[b * n + b]
                return da != db ? da > db : a < b
            }
        }
        var h = [Double](repeating: 0, count: n * n)
        var meanDiag = 0.0
        for i in 0..<n { meanDiag += Double(gram[i * n + i]) }
        meanDiag /= Double(max(1, n))
        if !(meanDiag > 0) || !meanDiag.isFinite { meanDiag = 1 }
        var damp = damping
        for _ in 0..<6 {
            if let p = perm {
                for i in 0..<n { for j in 0..<n { h[i * n + j] = Double(gram[p[i] * n + p[j]]) } }
            } else {
                for i in 0..<(n * n) { h[i] = Double(gram[i]) }
            }
            for i in 0..<n {
                // A channel calibration never saw has no curvature: give it a unit one so its
                // weights round to nearest and the factorisation stays defined.
                if !(h[i * n + i] > 0) { h[i * n + i] = meanDiag }
                h[i * n + i] += damp * meanDiag
            }
            if let u = Self.inverseUpperFactor(&h, n) {
                self.cols = n
                self.upper = u
                self.damping = damp
                self.order = perm
                return
            }
            damp *= 10
        }
        throw Failure.notPositiveDefinite(cols: n)
    }

    /// chol(H⁻¹) as an upper factor, or nil when H is not positive definite.
    private static func inverseUpperFactor(_ h: inout [Double], _ n: Int) -> [Float]? {
        var nn = Int32(n), info: Int32 = 0
        var lower = Int8(UInt8(ascii: "L"))
        // H is symmetric, so its row-major array is also its column-major one.
        h.withUnsafeMutableBufferPointer { p in dpotrf_(&lower, &nn, p.baseAddress, &nn, &info) }
        guard info == 0 else { return nil }
        h.withUnsafeMutableBufferPointer { p in dpotri_(&lower, &nn, p.baseAddress, &nn, &info) }
        guard info == 0 else { return nil }
        // Column-major lower triangle of H⁻¹ → fill the upper one to make it whole again.
        for j in 0..<n { for i in (j + 1)..<n { h[i * n + j] = h[j * n + i] } }
        h.withUnsafeMutableBufferPointer { p in dpotrf_(&lower, &nn, p.baseAddress, &nn, &info) }
        guard info == 0 else { return nil }
        // Column-major L with H⁻¹ = LLᵀ is, read row-major, U = Lᵀ with H⁻¹ = UᵀU.
        var u = [Float](repeating: 0, count: n * n)
        for r in 0..<n {
            for c in r..<n {
                let v = h[r * n + c]   // column-major element (c, r) of L, c ≥ r
                guard v.isFinite else { return nil }
                u[r * n + c] = Float(v)
            }
        }
        return u
    }
}
