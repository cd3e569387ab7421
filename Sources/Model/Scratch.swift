import Foundation

/// Named, reusable buffers for one forward pass. Layers of the same kind ask for the same names,
/// so after the first layer nothing is allocated; `release()` frees weight-sized buffers between
/// layers when memory matters more than first-touch cost.
public final class Scratch: @unchecked Sendable {
    private var buffers: [String: FloatBuffer] = [:]
    public init() {}

    public func buffer(_ name: String, _ count: Int) -> FloatBuffer {
        if let b = buffers[name] { b.resize(count); return b }
        let b = FloatBuffer(count: count)
        buffers[name] = b
        return b
    }

    public func release() { buffers.removeAll() }

    public var bytes: Int { buffers.values.reduce(0) { $0 + $1.capacity * 4 } }
}

/// How many threads the numeric kernels use (`--threads`); sgemm is told the same.
public enum Threads {
    nonisolated(unsafe) public private(set) static var count = ProcessInfo.processInfo.activeProcessorCount

    public static func set(_ n: Int) {
        count = max(1, n)
        Linear.setThreads(count)
    }
}

/// Runs `body(i)` for i in 0..<n on up to `Threads.count` threads; serial for one job or thread.
func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    let t = min(n, Threads.count)
    if t <= 1 { for i in 0..<n { body(i) }; return }
    // Workers call sgemm on small per-head matrices: a threaded OpenBLAS inside threaded workers
    // spins and yields (measured: half the time in exec_blas_async), so it runs single-threaded here.
    Linear.setThreads(1)
    defer { Linear.setThreads(Threads.count) }
    withoutActuallyEscaping(body) { f in
        DispatchQueue.concurrentPerform(iterations: t) { w in
            var i = w
            while i < n { f(i); i += t }
        }
    }
}
