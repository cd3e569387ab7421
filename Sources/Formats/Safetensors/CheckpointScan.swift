#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// `inspect --verify` on a safetensors checkpoint. safetensors stores no checksums, so what can be
/// verified is that every tensor's bytes can be read (the headers and offsets were validated when
/// the checkpoint was opened) and that every floating-point weight is finite: a NaN or infinity
/// in a weight is damage (or a broken export), never a value a model needs.
public struct CheckpointScan: Sendable {
    public struct Item: Sendable {
        public var name: String
        public var file: String
        public var dtype: DType
        public var elements: Int
        public var bytes: Int
        public var nan: Int
        public var infinite: Int
        public var nonFinite: Int { nan + infinite }
    }

    public var path: String
    public var items: [Item]
    public var seconds: Double

    public var bytesRead: Int { items.reduce(0) { $0 + $1.bytes } }
    public var damaged: [Item] { items.filter { $0.nonFinite > 0 } }
    public var ok: Bool { items.allSatisfy { $0.nonFinite == 0 } }

    /// Reads every stored tensor (in file order, bound or not) once. Pages are advised in ahead
    /// of the scan and dropped after each tensor, so RSS stays flat on a checkpoint larger than RAM.
    public static func run(_ ck: Checkpoint, threads: Int = 1) -> CheckpointScan {
        let start = now()
        let views = ck.tensorNames.compactMap { ck.view($0) }
        let n = views.count
        let out = UnsafeMutablePointer<Item>.allocate(capacity: max(1, n))
        defer { out.deinitialize(count: n); out.deallocate() }
        let parts = max(1, min(threads, n))
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            var i = p
            while i < n {
                (out + i).initialize(to: scan(views[i]))
                i += parts
            }
        }
        return CheckpointScan(path: ck.directory, items: Array(UnsafeBufferPointer(start: out, count: n)),
                              seconds: now() - start)
    }

    static func scan(_ v: TensorView) -> Item {
        v.file.willNeed(offset: v.info.offset, count: v.info.byteCount)
        defer { v.file.dontNeed(offset: v.info.offset, count: v.info.byteCount) }
        let b = v.bytes
        var nan = 0, inf = 0
        if let p = b.baseAddress, b.count > 0 {
            switch v.dtype {
            case .bf16: (nan, inf) = count16(p, b.count / 2, exponent: 0x7F80)
            case .f16: (nan, inf) = count16(p, b.count / 2, exponent: 0x7C00)
            case .f32: (nan, inf) = count32(p, b.count / 4)
            case .f64:
                for i in 0..<(b.count / 8) {
                    let d = p.loadUnaligned(fromByteOffset: i * 8, as: Double.self)
                    if d.isNaN { nan += 1 } else if d.isInfinite { inf += 1 }
                }
            case .f8e4m3:
                // float8_e4m3fn has no infinities; S.1111.111 is NaN.
                let s = p.assumingMemoryBound(to: UInt8.self)
                for i in 0..<b.count { nan &+= s[i] & 0x7F == 0x7F ? 1 : 0 }
            case .f8e5m2:
                let s = p.assumingMemoryBound(to: UInt8.self)
                for i in 0..<b.count {
                    let a = s[i] & 0x7F
                    nan &+= a > 0x7C ? 1 : 0
                    inf &+= a == 0x7C ? 1 : 0
                }
            default:
                // Integer tensors have no non-finite values; reading them still proves they are there.
                var x: UInt8 = 0
                let s = p.assumingMemoryBound(to: UInt8.self)
                var i = 0
                while i < b.count { x ^= s[i]; i += 4096 }
                withExtendedLifetime(x) {}
            }
        }
        return Item(name: v.name, file: v.path, dtype: v.dtype, elements: v.elementCount, bytes: v.info.byteCount,
                    nan: nan, infinite: inf)
    }

    /// Counts of NaN and ±infinity among `n` 16-bit floats whose exponent field is `exponent`;
    /// branch-free integer compares so the loop vectorizes (it runs at memory speed).
    @inline(__always)
    static func count16(_ p: UnsafeRawPointer, _ n: Int, exponent e: UInt16) -> (Int, Int) {
        var nan = 0, inf = 0
        if Int(bitPattern: p) & 1 == 0 {
            let s = p.assumingMemoryBound(to: UInt16.self)
            for i in 0..<n {
                let a = s[i] & 0x7FFF
                nan &+= a > e ? 1 : 0
                inf &+= a == e ? 1 : 0
            }
        } else {
            for i in 0..<n {
                let a = p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self) & 0x7FFF
                nan &+= a > e ? 1 : 0
                inf &+= a == e ? 1 : 0
            }
        }
        return (nan, inf)
    }

    @inline(__always)
    static func count32(_ p: UnsafeRawPointer, _ n: Int) -> (Int, Int) {
        var nan = 0, inf = 0
        for i in 0..<n {
            let a = p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self) & 0x7FFF_FFFF
            nan &+= a > 0x7F80_0000 ? 1 : 0
            inf &+= a == 0x7F80_0000 ? 1 : 0
        }
        return (nan, inf)
    }

    public var json: JSONValue {
        var o: JSONObject = ["path": .string(path), "ok": .bool(ok), "checked": .int(items.count),
                             "damaged": .int(damaged.count), "bytes_read": .int(bytesRead),
                             "seconds": .number((seconds * 1000).rounded() / 1000)]
        o["tensors"] = .array(items.map { i in
            ["name": .string(i.name), "dtype": .string(i.dtype.rawValue), "elements": .int(i.elements),
             "nan": .int(i.nan), "infinite": .int(i.infinite), "ok": .bool(i.nonFinite == 0)]
        })
        return .object(o)
    }
}

/// Monotonic seconds, for the scan's duration.
private func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
