import COpenBLAS

/// Matrix products, all through OpenBLAS sgemm over every token of a batch at once.
public enum Linear {
    /// Y[rows, out] = X[rows, in] · Wᵀ, with W stored [out, in] as in a torch Linear.
    @inline(__always)
    public static func forward(_ x: UnsafePointer<Float>, rows: Int, in k: Int,
                               weight w: UnsafePointer<Float>, out n: Int,
                               into y: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        guard rows > 0, n > 0 else { return }
        if k == 0 { if !accumulate { y.update(repeating: 0, count: rows * n) }; return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(k),
                    1, x, Int32(k), w, Int32(k), accumulate ? 1 : 0, y, Int32(n))
    }

    /// General row-major C[m,n] = alpha·op(A)·op(B) + beta·C with explicit leading dimensions.
    @inline(__always)
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
}
