import COpenBLAS
import Foundation

/// Matrix products, all through OpenBLAS sgemm over every token of a batch at once.
public enum Linear {
    /// Y[rows, out] = X[rows, in] · Wᵀ, with W stored [out, in] as in a torch Linear.
    @inline(__always)
    public static func forward(_ x: UnsafePointer<Float>, rows: Int, in k: Int,
                               weight w: UnsafePointer<Float>, out n: Int,
                               into y: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        guard rows > 0, n > 0 else { return }
        if k == 0 { if !accumulate { y.update(repeating: 0, count: rows * n) }; return }
        if FlopCounter.enabled { FlopCounter.add(m: rows, n: n, k: k) }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(k),
                    1, x, Int32(k), w, Int32(k), accumulate ? 1 : 0, y, Int32(n))
    }

    /// General row-major C[m,n] = alpha·op(A)·op(B) + beta·C with explicit leading dimensions.
    @inline(__always)
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if FlopCounter.enabled { FlopCounter.add(m: m, n: n, k: k) }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
}

/// Counts 2·m·n·k of every product that goes through `Linear`, for `bench forward`'s achieved
/// GFLOP/s. Off by default: then each product pays one load and branch; on, a lock per product
/// (attention's per-head products run on several threads), which is noise next to any sgemm.
public enum FlopCounter {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) private static var total: Double = 0
    private static let lock = NSLock()

    static func add(m: Int, n: Int, k: Int) {
        lock.lock()
        total += 2 * Double(m) * Double(n) * Double(k)
        lock.unlock()
    }

    /// FLOPs counted since the counter was last reset.
    public static var flops: Double {
        lock.lock(); defer { lock.unlock() }
        return total
    }

    public static func reset() {
        lock.lock(); total = 0; lock.unlock()
    }
}
