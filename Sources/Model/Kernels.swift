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
        // Eight partial sums break the dependency chain of a strict-order float reduction.
        var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
        var s4: Float = 0, s5: Float = 0, s6: Float = 0, s7: Float = 0
        var i = 0
        while i + 8 <= n {
            s0 += Foundation.exp(x[i] - m); s1 += Foundation.exp(x[i + 1] - m)
            s2 += Foundation.exp(x[i + 2] - m); s3 += Foundation.exp(x[i + 3] - m)
            s4 += Foundation.exp(x[i + 4] - m); s5 += Foundation.exp(x[i + 5] - m)
            s6 += Foundation.exp(x[i + 6] - m); s7 += Foundation.exp(x[i + 7] - m)
            i += 8
        }
        while i < n { s0 += Foundation.exp(x[i] - m); i += 1 }
        let s = Double(s0) + Double(s1) + Double(s2) + Double(s3) + Double(s4) + Double(s5) + Double(s6) + Double(s7)
        return m + Float(Foundation.log(s))
    }
}
