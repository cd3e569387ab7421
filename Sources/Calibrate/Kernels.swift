import Foundation

/// Elementwise and row-wise kernels of the forward pass. Plain loops over raw pointers so LLVM
/// vectorizes them; `Foundation.exp`/`log1p` are the libm functions torch's CPU path also uses.
public enum Kernels {
    /// y = w ⊙ x / sqrt(mean(x²) + eps), per row of `cols` values. In-place allowed (y == x).
    public static func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, cols: Int, weight w: UnsafePointer<Float>,
                               eps: Float, into y: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let xr = x + r * cols, yr = y + r * cols
            var ss: Float = 0
            for i in 0..<cols { ss += xr[i] * xr[i] }
            let inv = 1 / (ss / Float(cols) + eps).squareRoot()
            for i in 0..<cols { yr[i] = w[i] * (xr[i] * inv) }
        }
    }

    @inline(__always) public static func silu(_ v: Float) -> Float { v / (1 + Foundation.exp(-v)) }

    /// torch's softplus with threshold 20: returns its input above the threshold.
    @inline(__always) public static func softplus(_ v: Float) -> Float {
        v > 20 ? v : Foundation.log1p(Foundation.exp(v))
    }

    /// relu(x)² in place: Nemotron-H's squared-ReLU activation.
    public static func reluSquared(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { let v = max(x[i], 0); x[i] = v * v }
    }

    /// dst += src
    public static func add(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { dst[i] += src[i] }
    }

    /// Numerically stable log-sum-exp of one row (softmax denominators in FP32, then log).
    public static func logSumExp(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var m = -Float.infinity
        for i in 0..<n where x[i] > m { m = x[i] }
        var s: Double = 0
        for i in 0..<n { s += Double(Foundation.exp(x[i] - m)) }
        return m + Float(Foundation.log(s))
    }
}
