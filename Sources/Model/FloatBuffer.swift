#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A 64-byte-aligned Float32 buffer with a stable address. Activations and FP32 weights live in
/// these rather than in Arrays so kernels see raw pointers (no bounds checks, no copy-on-write)
/// and so large buffers can be reused across layers instead of paying the VM's first-touch cost
/// again (docs/PERFORMANCE.md: 0.35–8.5 GB/s for fresh pages).
public final class FloatBuffer: @unchecked Sendable {
    public private(set) var pointer: UnsafeMutablePointer<Float>
    public private(set) var capacity: Int
    public private(set) var count: Int

    public init(count: Int) {
        self.count = count
        self.capacity = max(count, 16)
        self.pointer = FloatBuffer.allocate(capacity)
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { free(pointer) }

    /// Resizes without preserving contents; grows only, so steady-state reuse never allocates.
    public func resize(_ n: Int) {
        if n > capacity {
            free(pointer)
            capacity = n
            pointer = FloatBuffer.allocate(n)
        }
        count = n
    }

    public func zero() { pointer.update(repeating: 0, count: count) }

    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    private static func allocate(_ n: Int) -> UnsafeMutablePointer<Float> {
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, max(n, 16) * 4) == 0, let r = raw else {
            fatalError("out of memory allocating \(n * 4) bytes")
        }
        return r.bindMemory(to: Float.self, capacity: n)
    }
}
