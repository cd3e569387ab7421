#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Formats

/// `nemo-convert bench read`: how fast the safetensors side of a conversion is.
///
/// Two generated checkpoints, both with Nemotron-3-Nano-30B-A3B dimensions:
/// - **dense**: about `gigabytes` of random BF16 weights, pattern `MEM*EM*E`, experts of width
///   1856 as per-expert 2-D tensors. The number of routed experts per MoE layer is what
///   shrinks to fit the budget (one expert pair is 20 MB; all 128 in one layer would be 2.6 GB).
///   Measures open + validate, BF16→F32 conversion of every tensor into one reused buffer with
///   the page cache warm, and a plain memcpy of the same bytes in the same run.
/// - **layout**: the released model's full tensor list (52 layers, 128 experts, 6,243 tensors,
///   ~63 GB) with its data left as holes, so it costs no disk. Opening and validating a
///   checkpoint reads only headers, so this measures it at real scale without 63 GB of writes.
/// Last, the conversion kernels alone per stored type, from RAM, in cache and streaming.
public enum ReadBenchmark {
    public struct Options: Sendable {
        /// Work directory; created if missing. The checkpoints go into subfolders of it.
        public var directory: String
        public var gigabytes: Double
        public var keep: Bool
        /// Timed repetitions; medians are reported.
        public var repeats: Int

        public init(directory: String, gigabytes: Double = 4, keep: Bool = false, repeats: Int = 5) {
            self.directory = directory; self.gigabytes = gigabytes; self.keep = keep; self.repeats = repeats
        }
    }

    public struct Result: Sendable {
        public var directory: String
        public var pattern: String
        public var routedExperts: Int
        public var tensorCount: Int
        public var shards: Int
        public var dataBytes: Int
        public var writeSeconds: Double
        /// Median over repeats of `Checkpoint(path:)` + `TensorMap(checkpoint:)`.
        public var openMilliseconds: Double
        public var layoutTensorCount: Int
        public var layoutShards: Int
        public var layoutBytes: Int
        public var layoutOpenMilliseconds: Double
        /// Input (stored) bytes per second.
        public var convertGBps: Double
        public var memcpyGBps: Double
        public var ratio: Double { convertGBps / memcpyGBps }
        public var kept: Bool
        /// Per stored type: GB/s of input converting 256K elements (output stays in L2) and 32M
        /// elements (output streams to memory), from a buffer in RAM rather than a file.
        public var kernels: [(dtype: DType, inCacheGBps: Double, largeGBps: Double)]

        public var json: JSONValue {
            var o: JSONObject = ["directory": .string(directory), "kept": .bool(kept)]
            o["dense"] = [
                "pattern": .string(pattern), "routed_experts": .int(routedExperts), "tensors": .int(tensorCount),
                "shards": .int(shards), "bytes": .int(dataBytes), "write_seconds": .number(round3(writeSeconds)),
                "open_validate_ms": .number(round3(openMilliseconds)),
            ]
            o["layout"] = [
                "pattern": .string(SyntheticCheckpoint.nano3Pattern), "tensors": .int(layoutTensorCount),
                "shards": .int(layoutShards), "logical_bytes": .int(layoutBytes),
                "open_validate_ms": .number(round3(layoutOpenMilliseconds)),
            ]
            o["convert_bf16_f32_gbps"] = .number(round3(convertGBps))
            o["memcpy_gbps"] = .number(round3(memcpyGBps))
            o["convert_over_memcpy"] = .number(round3(ratio))
            var k = JSONObject()
            for r in kernels {
                k[r.dtype.rawValue] = ["in_cache_gbps": .number(round3(r.inCacheGBps)), "large_gbps": .number(round3(r.largeGBps))]
            }
            o["kernels"] = .object(k)
            return .object(o)
        }
    }

    /// One routed expert's up and down projections in BF16.
    static let expertPairBytes = 2 * 1856 * 2688 * 2
    static let densePattern = "MEM*EM*E"
    static let denseVocab = 8192

    /// Routed experts per MoE layer that fit `bytes` (at least 8, so top-6 routing stays valid).
    static func expertsFitting(_ bytes: Int) throws(FormatError) -> Int {
        let fixed = try SyntheticCheckpoint.nano3(pattern: densePattern, experts: 8, vocab: denseVocab, shardBytes: 1)
            .tensors().filter { !$0.name.contains(".experts.") }.reduce(0) { $0 + $1.byteCount }
        let moeLayers = densePattern.filter { $0 == "E" }.count
        return min(128, max(8, (bytes - fixed) / (moeLayers * expertPairBytes)))
    }

    public static func run(_ o: Options, progress: @escaping (String) -> Void = { _ in }) throws(FormatError) -> Result {
        let budget = Int(o.gigabytes * 1e9)
        let experts = try expertsFitting(budget)
        let dense = SyntheticCheckpoint.nano3(pattern: densePattern, experts: experts, vocab: denseVocab, shardBytes: 1_000_000_000)
        let layout = SyntheticCheckpoint.nano3(pattern: SyntheticCheckpoint.nano3Pattern, experts: 128, vocab: 131_072,
                                               shardBytes: 5_000_000_000)
        let need = try dense.tensors().reduce(0) { $0 + $1.byteCount }
        let workExisted = isDirectory(o.directory)
        try makeDirectory(o.directory)
        let free = freeBytes(o.directory)
        guard free > need + need / 10 + (1 << 30) else {
            throw FormatError.io(file: o.directory, message: "needs \(need / 1_000_000) MB for the benchmark checkpoint plus 1 GB spare, only \(free / 1_000_000) MB free (use --gb to shrink it)")
        }
        let denseDir = join(o.directory, "dense-bf16"), layoutDir = join(o.directory, "nano3-layout")
        try makeDirectory(denseDir)
        try makeDirectory(layoutDir)
        var created: [String] = []
        defer {
            if !o.keep {
                for f in created { unlink(f) }
                rmdir(denseDir); rmdir(layoutDir)
                if !workExisted { rmdir(o.directory) }
            }
        }

        progress("writing \(need / 1_000_000) MB of BF16 weights (\(experts) routed experts per MoE layer) to \(denseDir)")
        var lastReport = 0
        let t0 = now()
        let written = try dense.write(to: denseDir, materialize: true) { done, total in
            if done - lastReport >= 500_000_000 || done == total {
                lastReport = done
                progress("  \(done / 1_000_000) / \(total / 1_000_000) MB")
            }
        }
        let writeSeconds = now() - t0
        created += written.files
        progress("writing the full Nemotron-3-Nano layout (data as holes) to \(layoutDir)")
        let skeleton = try layout.write(to: layoutDir, materialize: false)
        created += skeleton.files

        progress("timing open + validate")
        let openMs = try median(o.repeats) { () throws(FormatError) in
            let t = now()
            let ck = try Checkpoint(path: denseDir)
            _ = try TensorMap(checkpoint: ck)
            return (now() - t) * 1000
        }
        let layoutMs = try median(o.repeats) { () throws(FormatError) in
            let t = now()
            let ck = try Checkpoint(path: layoutDir)
            _ = try TensorMap(checkpoint: ck)
            return (now() - t) * 1000
        }

        progress("timing BF16→F32 conversion and memcpy")
        let ck = try Checkpoint(path: denseDir)
        let views = ck.tensorNames.compactMap { ck.view($0) }
        let (convert, copy) = try throughput(views, repeats: o.repeats)
        progress("timing conversion kernels per dtype")
        let kernels = kernelThroughput(repeats: o.repeats)
        return Result(directory: o.directory, pattern: densePattern, routedExperts: experts, tensorCount: written.tensorCount,
                      shards: written.shards, dataBytes: written.dataBytes, writeSeconds: writeSeconds,
                      openMilliseconds: openMs, layoutTensorCount: skeleton.tensorCount, layoutShards: skeleton.shards,
                      layoutBytes: skeleton.dataBytes, layoutOpenMilliseconds: layoutMs,
                      convertGBps: convert, memcpyGBps: copy, kept: o.keep, kernels: kernels)
    }

    /// Median GB/s (of stored bytes) of converting every tensor to F32, and of copying the same
    /// bytes, alternating the two so both see the same cache and page-table state.
    static func throughput(_ views: [TensorView], repeats: Int) throws(FormatError) -> (Double, Double) {
        let maxElements = views.map(\.elementCount).max() ?? 0
        let maxBytes = views.map(\.info.byteCount).max() ?? 0
        let total = Double(views.reduce(0) { $0 + $1.info.byteCount })
        // Fresh memory is backed lazily here (first touch at under 1 GB/s): touch both buffers first.
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: max(1, maxElements))
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: max(1, maxBytes), alignment: 64)
        defer { floats.deallocate(); bytes.deallocate() }
        floats.initialize(repeating: 0, count: max(1, maxElements))
        memset(bytes, 0, max(1, maxBytes))

        func copyAll() { for v in views { memcpy(bytes, v.bytes.baseAddress!, v.info.byteCount) } }
        func convertAll() throws(FormatError) { for v in views { try v.readFloats(into: floats) } }
        // Warm-up: faults in every page of every mapping, so timed passes read from the page cache.
        copyAll()
        try convertAll()
        var c: [Double] = [], m: [Double] = []
        for _ in 0..<max(1, repeats) {
            var t = now()
            try convertAll()
            c.append(total / (now() - t) / 1e9)
            t = now()
            copyAll()
            m.append(total / (now() - t) / 1e9)
        }
        return (middle(c), middle(m))
    }

    static func kernelThroughput(repeats: Int) -> [(dtype: DType, inCacheGBps: Double, largeGBps: Double)] {
        let large = 32 << 20
        let src = UnsafeMutableRawPointer.allocate(byteCount: 4 * large, alignment: 64)
        let dst = UnsafeMutablePointer<Float>.allocate(capacity: large)
        defer { src.deallocate(); dst.deallocate() }
        var rng = XorShift(seed: 42)
        rng.fill(src, bytes: 4 * large, dtype: .bf16)   // finite BF16/F16 values; any FP8 codes
        dst.initialize(repeating: 0, count: large)
        func rate(_ d: DType, _ n: Int, _ inner: Int) -> Double {
            var xs: [Double] = []
            for _ in 0..<max(1, repeats) {
                let t = now()
                for _ in 0..<inner { FloatConversion.convert(UnsafeRawBufferPointer(start: src, count: 4 * large), dtype: d, count: n, into: dst) }
                xs.append(Double(inner * n * d.byteSize) / (now() - t) / 1e9)
            }
            return middle(xs)
        }
        return [DType.bf16, .f16, .f32, .f8e4m3, .f8e5m2].map { d in (d, rate(d, 256 << 10, 100), rate(d, large, 1)) }
    }

    static func median(_ n: Int, _ body: () throws(FormatError) -> Double) throws(FormatError) -> Double {
        var xs: [Double] = []
        for _ in 0..<max(1, n) { xs.append(try body()) }
        return middle(xs)
    }

    static func middle(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

private func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func makeDirectory(_ path: String) throws(FormatError) {
    if isDirectory(path) { return }
    guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
        throw FormatError.io(file: path, message: "cannot create directory: \(errnoString())")
    }
}

func freeBytes(_ path: String) -> Int {
    var s = statvfs()
    guard statvfs(path, &s) == 0 else { return Int.max }
    return Int(s.f_bavail) * Int(s.f_frsize)
}
