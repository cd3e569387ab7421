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

/// Runs `body(i)` for i in 0..<n on all cores; serial when there is one job.
func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    if n <= 1 { for i in 0..<n { body(i) }; return }
    withoutActuallyEscaping(body) { f in
        DispatchQueue.concurrentPerform(iterations: n) { f($0) }
    }
}
