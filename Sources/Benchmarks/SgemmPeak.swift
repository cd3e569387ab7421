import COpenBLAS
import Model

/// What cblas_sgemm itself achieves on this machine, measured in the same process as the forward
/// pass it is compared with (the VM's speed drifts by tens of percent between runs).
public enum SgemmPeak {
    public struct Shape: Sendable, Equatable {
        public var m: Int, n: Int, k: Int
        /// B stored [n, k] and transposed, as in a torch Linear (X · Wᵀ).
        public var transB: Bool
        public var label: String
        public init(m: Int, n: Int, k: Int, transB: Bool, label: String) {
            self.m = m; self.n = n; self.k = k; self.transB = transB; self.label = label
        }
        public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    }

    public struct Figure: Sendable {
        public var shape: Shape
        public var threads: Int
        public var gflops: Double
        /// FLOPs per second of process CPU time (at one thread, contention-proof).
        public var cpuGFLOPS: Double
    }

    /// Best of `trials` timings, each repeating the product for at least `minSeconds`.
    public static func measure(_ s: Shape, threads: Int, trials: Int = 3, minSeconds: Double = 0.25) -> Figure {
        Linear.setThreads(threads)
        let a = FloatBuffer(count: s.m * s.k), b = FloatBuffer(count: s.n * s.k), c = FloatBuffer(count: s.m * s.n)
        var g = SyntheticWeights.Generator(seed: 0xB1A5)
        g.uniform(a.pointer, count: a.count, scale: 1)
        g.uniform(b.pointer, count: b.count, scale: 1)
        c.zero()
        let ldb = s.transB ? s.k : s.n
        func once() {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, s.transB ? CblasTrans : CblasNoTrans,
                        Int32(s.m), Int32(s.n), Int32(s.k), 1, a.pointer, Int32(s.k), b.pointer, Int32(ldb),
                        0, c.pointer, Int32(s.n))
        }
        once()
        var best = 0.0, bestCPU = 0.0
        for _ in 0..<trials {
            var reps = 0
            let t0 = BenchClock.now(), c0 = BenchClock.cpu()
            var dt = 0.0
            repeat { once(); reps += 1; dt = BenchClock.now() - t0 } while dt < minSeconds
            best = max(best, Double(reps) * s.flops / dt / 1e9)
            bestCPU = max(bestCPU, Double(reps) * s.flops / (BenchClock.cpu() - c0) / 1e9)
        }
        return Figure(shape: s, threads: threads, gflops: best, cpuGFLOPS: bestCPU)
    }
}
