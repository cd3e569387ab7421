import Foundation
import Formats
import Quantize

/// `nemo-convert bench convert`: conversion throughput and memory on a generated
/// Nemotron-3-Nano-shaped checkpoint, against the machine's own limits measured in the same run.
///
/// The checkpoint has the released model's full widths — hidden 2688, Mamba 64 heads × 64 with
/// in_proj of 10,304 rows, attention 32 / 2 / 128, experts of 1856, a shared expert of 3712 and the
/// real 131,072-token vocabulary, so the largest tensors (embedding and lm_head, 704 MB each in
/// BF16) are the real ones — with pattern `MEM*EM*E` and as many routed experts per MoE layer as
/// fit the size budget. Each conversion runs as a child process (`convert --json`), so its peak
/// RSS is the converter's alone, not the generator's or this process's buffers.
public enum ConvertBenchmark {
    public struct Options: Sendable {
        /// Work directory; created if missing.
        public var directory: String
        public var gigabytes: Double
        public var recipes: [String]
        /// Threads given to each conversion.
        public var threads: Int
        /// Runs each conversion in a child process.
        public var launcher: ConvertLauncher
        public var keep: Bool
        /// Where the converted files go (default: `directory`). A RAM file system here takes the
        /// disk's write speed out of the figures and leaves the converter's own.
        public var outputDirectory: String?
        /// `convert --format`: "packed" or "gguf".
        public var format: String
        /// A peer tool timed on the same weights in the same run (llama-quantize, for GGUF).
        public var peer: PeerQuantizer?

        public init(directory: String, gigabytes: Double = 4, recipes: [String] = ["int4", "int8"], threads: Int = 2,
                    launcher: ConvertLauncher, keep: Bool = false, outputDirectory: String? = nil,
                    format: String = "packed", peer: PeerQuantizer? = nil) {
            self.directory = directory; self.gigabytes = gigabytes; self.recipes = recipes
            self.threads = threads; self.launcher = launcher; self.keep = keep; self.outputDirectory = outputDirectory
            self.format = format; self.peer = peer
        }
    }

    public struct Run: Sendable {
        /// "nemo-convert", or the peer's name.
        public var tool: String = "nemo-convert"
        public var recipe: String
        /// "warm": the checkpoint is in the page cache; "cold": its pages were dropped first.
        public var cache: String
        public var inputBytes: Int
        public var outputBytes: Int
        public var bitsPerWeight: Double
        /// As `convert` reports it: open to rename, fsync included.
        public var seconds: Double
        public var inputGBps: Double
        public var peakRSSBytes: Int
        /// Output bytes per second of the conversion: against the disk's write rate, how much of
        /// the time was the durable write.
        public var outputGBps: Double { Double(outputBytes) / seconds / 1e9 }
        /// Wall time of the child process, start-up included.
        public var wallSeconds: Double
        /// User + system CPU time of the child: with `wallSeconds`, shows whether the run had the
        /// cores to itself (this VM is shared) or waited on the disk.
        public var cpuSeconds: Double
    }

    public struct Result: Sendable {
        public var directory: String
        public var pattern: String
        public var vocab: Int
        public var routedExperts: Int
        public var tensorCount: Int
        public var shards: Int
        public var dataBytes: Int
        public var writeSeconds: Double
        public var threads: Int
        /// memcpy between two buffers in RAM.
        public var memcpyGBps: Double
        /// read() of the shards after dropping their pages from the page cache.
        public var diskReadGBps: Double
        /// write() + fsync of 1 GB next to the outputs: what a conversion's output (written
        /// durably before the rename) can go at.
        public var diskWriteGBps: Double
        public var runs: [Run]
        public var kept: Bool
        public var outputDirectory: String

        public var json: JSONValue {
            var o: JSONObject = ["directory": .string(directory), "output_directory": .string(outputDirectory), "kept": .bool(kept)]
            o["checkpoint"] = [
                "pattern": .string(pattern), "vocab": .int(vocab), "routed_experts": .int(routedExperts),
                "tensors": .int(tensorCount), "shards": .int(shards), "bytes": .int(dataBytes),
                "write_seconds": .number(r3(writeSeconds)),
            ]
            o["threads"] = .int(threads)
            o["memcpy_gbps"] = .number(r3(memcpyGBps))
            o["disk_read_cold_gbps"] = .number(r3(diskReadGBps))
            o["disk_write_fsync_gbps"] = .number(r3(diskWriteGBps))
            o["conversions"] = .array(runs.map { r in
                ["tool": .string(r.tool), "recipe": .string(r.recipe), "cache": .string(r.cache), "input_bytes": .int(r.inputBytes),
                 "output_bytes": .int(r.outputBytes), "bits_per_weight": .number(r3(r.bitsPerWeight)),
                 "seconds": .number(r3(r.seconds)), "input_gb_per_s": .number(r3(r.inputGBps)),
                 "peak_rss_bytes": .int(r.peakRSSBytes), "wall_seconds": .number(r3(r.wallSeconds)),
                 "cpu_seconds": .number(r3(r.cpuSeconds)),
                 "of_memcpy": .number(r3(r.inputGBps / memcpyGBps)), "of_disk_read": .number(r3(r.inputGBps / diskReadGBps)),
                 "output_gb_per_s": .number(r3(r.outputGBps)), "output_of_disk_write": .number(r3(r.outputGBps / diskWriteGBps))]
            })
            return .object(o)
        }
    }

    static let pattern = "MEM*EM*E"
    static let vocab = 131_072

    /// Routed experts per MoE layer that bring the checkpoint to `bytes` (at least 8, at most 128).
    static func expertsFitting(_ bytes: Int) throws -> Int {
        let fixed = try SyntheticCheckpoint.nano3(pattern: pattern, experts: 8, vocab: vocab, shardBytes: 1)
            .tensors().filter { !$0.name.contains(".experts.") }.reduce(0) { $0 + $1.byteCount }
        let pair = 2 * 1856 * 2688 * 2
        let moeLayers = pattern.filter { $0 == "E" }.count
        return min(128, max(8, (bytes - fixed + moeLayers * pair - 1) / (moeLayers * pair)))
    }

    public static func run(_ o: Options, progress: @escaping (String) -> Void = { _ in }) throws -> Result {
        let experts = try expertsFitting(Int(o.gigabytes * 1e9))
        let gen = SyntheticCheckpoint.nano3(pattern: pattern, experts: experts, vocab: vocab, shardBytes: 1_000_000_000)
        let need = try gen.tensors().reduce(0) { $0 + $1.byteCount }
        let existed = FileManager.default.fileExists(atPath: o.directory)
        try FileManager.default.createDirectory(atPath: o.directory, withIntermediateDirectories: true)
        let ckDir = o.directory + "/nano3-bf16"
        try FileManager.default.createDirectory(atPath: ckDir, withIntermediateDirectories: true)
        defer {
            if !o.keep {
                try? FileManager.default.removeItem(atPath: ckDir)
                if !existed { try? FileManager.default.removeItem(atPath: o.directory) }
            }
        }
        // The input, plus the largest output (int8: about half the input), plus 1 GB to spare.
        let free = freeBytes(o.directory)
        let outFree = o.outputDirectory.map(freeBytes) ?? Int.max
        guard free > need + need / 2 + (1 << 30), outFree > need / 2 + (1 << 30) else {
            throw FormatError.io(file: o.directory, message: "needs \(need / 1_000_000) MB for the checkpoint and \(need / 2_000_000) MB for a converted copy plus 1 GB spare; only \(min(free, outFree) / 1_000_000) MB free (use --gb, --dir or --out-dir)")
        }

        progress("writing \(need / 1_000_000) MB of BF16 weights (\(experts) routed experts per MoE layer, vocabulary \(vocab)) to \(ckDir)")
        var last = 0
        let t0 = monotonicSeconds()
        let written = try gen.write(to: ckDir, materialize: true) { done, total in
            if done - last >= 1_000_000_000 || done == total { last = done; progress("  \(done / 1_000_000) / \(total / 1_000_000) MB") }
        }
        let writeSeconds = monotonicSeconds() - t0
        let shards = written.files.filter { $0.hasSuffix(".safetensors") }

        progress("measuring cold disk reads (page cache dropped) and durable writes")
        let disk = try coldRead(shards)
        let write = try durableWrite((o.outputDirectory ?? o.directory) + "/write-test", bytes: 1 << 30)

        var runs: [Run] = []
        for recipe in o.recipes {
            for cache in ["warm", "cold"] {
                if cache == "cold" { try dropCache(shards) } else { try warm(shards) }
                progress("converting with \(recipe), page cache \(cache), \(o.threads) thread\(o.threads == 1 ? "" : "s")")
                let r = try convert(o, checkpoint: ckDir, recipe: recipe, cache: cache)
                progress(String(format: "  %.2f GB/s of input, %.1f s, peak RSS %.0f MB, %.3f bits per weight",
                                r.inputGBps, r.seconds, Double(r.peakRSSBytes) / 1e6, r.bitsPerWeight))
                runs.append(r)
            }
        }
        if let peer = o.peer {
            // The peer reads the same weights as a BF16 GGUF (our writer's; llama.cpp's own
            // converter writes the same tensors, docs/GGUF.md), made once and not timed.
            let outDir = o.outputDirectory ?? o.directory
            let bf16 = outDir + "/peer-input-bf16.gguf"
            progress("writing the BF16 GGUF \(peer.name) reads")
            let made = try o.launcher.run(["convert", ckDir, "-o", bf16, "--format", "gguf", "--recipe", "bf16",
                                           "--threads", String(o.threads), "--json"])
            guard made.status == 0 else { throw FormatError.io(file: ckDir, message: "convert to a BF16 GGUF exited with \(made.status): \(made.stderr)") }
            defer { unlink(bf16) }
            for recipe in o.recipes {
                for cache in ["warm", "cold"] {
                    if cache == "cold" { try dropCache([bf16]) } else { try warm([bf16]) }
                    progress("\(peer.name) \(recipe.uppercased()), page cache \(cache), \(o.threads) thread\(o.threads == 1 ? "" : "s")")
                    let r = try peerRun(peer, input: bf16, recipe: recipe, cache: cache, threads: o.threads,
                                        outDir: outDir, weights: written.dataBytes / 2)
                    progress(String(format: "  %.2f GB/s of input, %.1f s, peak RSS %.0f MB", r.inputGBps, r.seconds, Double(r.peakRSSBytes) / 1e6))
                    runs.append(r)
                }
            }
        }
        progress("measuring memcpy")
        let copy = memcpyRate()
        return Result(directory: o.directory, pattern: pattern, vocab: vocab, routedExperts: experts,
                      tensorCount: written.tensorCount, shards: written.shards, dataBytes: written.dataBytes,
                      writeSeconds: writeSeconds, threads: o.threads, memcpyGBps: copy, diskReadGBps: disk, diskWriteGBps: write,
                      runs: runs, kept: o.keep, outputDirectory: o.outputDirectory ?? o.directory)
    }

    /// One conversion in a child process; its `--json` report gives time, rate and peak RSS.
    static func convert(_ o: Options, checkpoint: String, recipe: String, cache: String) throws -> Run {
        let out = (o.outputDirectory ?? o.directory) + "/converted-\(recipe)" + (o.format == "gguf" ? ".gguf" : ".nemo")
        defer { unlink(out) }
        let cpu0 = childrenCPUSeconds()
        let t = monotonicSeconds()
        let r = try o.launcher.run(["convert", checkpoint, "-o", out, "--format", o.format, "--recipe", recipe,
                                    "--threads", String(o.threads), "--json"])
        let wall = monotonicSeconds() - t
        let cpu = childrenCPUSeconds() - cpu0
        guard r.status == 0 else {
            throw FormatError.io(file: checkpoint, message: "convert --recipe \(recipe) exited with \(r.status): \(r.stderr)")
        }
        let data = r.stdout
        let j = try JSONParser.parse(Array(data))
        func num(_ k: String) throws -> Double {
            guard let v = j[k]?.doubleValue else { throw FormatError.io(file: o.launcher.name, message: "convert --json has no '\(k)'") }
            return v
        }
        return Run(recipe: recipe, cache: cache, inputBytes: Int(try num("input_bytes")), outputBytes: Int(try num("output_bytes")),
                   bitsPerWeight: try num("bits_per_weight"), seconds: try num("seconds"), inputGBps: try num("input_gb_per_s"),
                   peakRSSBytes: Int(try num("peak_rss_bytes")), wallSeconds: wall, cpuSeconds: cpu)
    }

    /// The peer quantizing the BF16 GGUF to the recipe's ggml type (q4_0 → Q4_0).
    static func peerRun(_ peer: PeerQuantizer, input: String, recipe: String, cache: String, threads: Int,
                        outDir: String, weights: Int) throws -> Run {
        let out = outDir + "/peer-\(recipe).gguf"
        defer { unlink(out) }
        let inBytes = fileSize(input)
        let r = try peer.run(input, out, recipe.uppercased(), threads)
        guard r.status == 0 else {
            throw FormatError.io(file: input, message: "\(peer.name) \(recipe.uppercased()) exited with \(r.status): \(r.stderr.suffix(2000))")
        }
        let outBytes = fileSize(out)
        return Run(tool: peer.name, recipe: recipe, cache: cache, inputBytes: inBytes, outputBytes: outBytes,
                   bitsPerWeight: Double(outBytes) * 8 / Double(max(1, weights)), seconds: r.wallSeconds,
                   inputGBps: Double(inBytes) / r.wallSeconds / 1e9, peakRSSBytes: r.peakRSSBytes,
                   wallSeconds: r.wallSeconds, cpuSeconds: r.cpuSeconds)
    }

    static func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    // MARK: the machine's limits, measured on the same files

    /// GB/s of read() into an 8 MB buffer, every shard's pages dropped from the page cache first.
    static func coldRead(_ files: [String]) throws -> Double {
        try dropCache(files)
        let chunk = 8 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { buf.deallocate() }
        var total = 0
        let t = monotonicSeconds()
        for f in files {
            let fd = open(f, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FormatError.io(file: f, message: "cannot open: \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            while true {
                let n = read(fd, buf, chunk)
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw FormatError.io(file: f, message: "read failed: \(String(cString: strerror(errno)))") }
                if n == 0 { break }
                total += n
            }
        }
        return Double(total) / (monotonicSeconds() - t) / 1e9
    }

    /// GB/s of writing `bytes` of non-zero data in 8 MB pieces and fsyncing, as the converter's
    /// output is written; the file is removed afterwards.
    static func durableWrite(_ path: String, bytes: Int) throws -> Double {
        let chunk = 8 << 20
        let buf = UnsafeMutablePointer<UInt64>.allocate(capacity: chunk / 8)
        defer { buf.deallocate() }
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<(chunk / 8) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; buf[i] = x }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FormatError.io(file: path, message: "cannot create: \(String(cString: strerror(errno)))") }
        defer { close(fd); unlink(path) }
        let t = monotonicSeconds()
        var done = 0
        while done < bytes {
            let n = pwrite(fd, buf, min(chunk, bytes - done), off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw FormatError.io(file: path, message: "write failed: \(String(cString: strerror(errno)))") }
            done += n
        }
        guard fsync(fd) == 0 else { throw FormatError.io(file: path, message: "fsync failed: \(String(cString: strerror(errno)))") }
        return Double(bytes) / (monotonicSeconds() - t) / 1e9
    }

    /// GB/s of memcpy between two 512 MB buffers (far larger than any cache, so this is memory
    /// bandwidth), median of 5 passes of 2 GB. Measured after the conversions: a child process
    /// inherits its parent's peak RSS across exec (Linux ru_maxrss), so this process must hold
    /// little memory, and never the checkpoint's pages, while conversions run.
    static func memcpyRate() -> Double {
        let size = 512 << 20, reps = 4
        let a = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        let b = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        defer { a.deallocate(); b.deallocate() }
        memset(a, 1, size)
        memset(b, 0, size)
        var rates: [Double] = []
        for _ in 0..<5 {
            let t = monotonicSeconds()
            for i in 0..<reps { if i % 2 == 0 { memcpy(b, a, size) } else { memcpy(a, b, size) } }
            rates.append(Double(size * reps) / (monotonicSeconds() - t) / 1e9)
        }
        return rates.sorted()[2]
    }

    /// Drops the files' pages from the page cache (written data is flushed first: dirty pages
    /// cannot be dropped).
    static func dropCache(_ files: [String]) throws {
        for f in files {
            let fd = open(f, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FormatError.io(file: f, message: "cannot open: \(String(cString: strerror(errno)))") }
            _ = fdatasync(fd)
            _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED))
            close(fd)
        }
    }

    /// Reads the files once (read(), so nothing stays mapped here) so that the next conversion
    /// finds them in the page cache.
    static func warm(_ files: [String]) throws {
        let chunk = 8 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { buf.deallocate() }
        for f in files {
            let fd = open(f, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FormatError.io(file: f, message: "cannot open: \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            while true {
                let n = read(fd, buf, chunk)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
            }
        }
    }

    static func freeBytes(_ path: String) -> Int {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return Int.max }
        return Int(s.f_bavail) * Int(s.f_frsize)
    }

    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// CPU seconds of all waited-for children so far.
    static func childrenCPUSeconds() -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &u)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return s(u.ru_utime) + s(u.ru_stime)
    }

    static func r3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
}
