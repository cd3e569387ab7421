import Foundation
import Formats
import Tokenizer

/// `nemo-convert bench tokenize`: encoding throughput, MB of UTF-8 input per second, one thread.
///
/// A Tokenizer caches the ids of every pre-token it has seen, so the first pass over a text and
/// the ones after it are different workloads: **cold** encodes with a freshly loaded tokenizer
/// each time (every word goes through the BPE merges once, what a one-shot `perplexity` run
/// pays), **warm** re-encodes with the same tokenizer (mostly cache hits, as on a long corpus
/// whose words repeat). Each is the median of `repeats` samples; loading tokenizer.json is timed
/// apart and never counted in either.
public enum TokenizeBenchmark {
    public struct FileFigures: Sendable {
        public var path: String
        public var bytes: Int
        public var tokens: Int
        /// Seconds per pass over the whole text, one entry per sample: wall clock, and the
        /// encoding thread's CPU time (what an idle machine would show; this VM is shared).
        public var coldSeconds: [Double]
        public var warmSeconds: [Double]
        public var coldCPUSeconds: [Double]
        public var warmCPUSeconds: [Double]
        public var coldMBps: Double { Double(bytes) / median(coldSeconds) / 1e6 }
        public var warmMBps: Double { Double(bytes) / median(warmSeconds) / 1e6 }
        public var coldCPUMBps: Double { Double(bytes) / median(coldCPUSeconds) / 1e6 }
        public var warmCPUMBps: Double { Double(bytes) / median(warmCPUSeconds) / 1e6 }
    }

    public struct Result: Sendable {
        public var tokenizer: String
        public var vocabSize: Int
        public var loadSeconds: [Double]
        public var files: [FileFigures]

        public var json: JSONValue {
            var fs: [JSONValue] = []
            for f in files {
                fs.append([
                    "path": .string(f.path), "bytes": .int(f.bytes), "tokens": .int(f.tokens),
                    "bytes_per_token": .number(round3(Double(f.bytes) / Double(max(1, f.tokens)))),
                    "cold_mb_per_s": .number(round3(f.coldMBps)), "warm_mb_per_s": .number(round3(f.warmMBps)),
                    "cold_mb_per_cpu_s": .number(round3(f.coldCPUMBps)), "warm_mb_per_cpu_s": .number(round3(f.warmCPUMBps)),
                    "cold_seconds": .array(f.coldSeconds.map { .number(round6($0)) }),
                    "warm_seconds": .array(f.warmSeconds.map { .number(round6($0)) }),
                ])
            }
            return [
                "tokenizer": .string(tokenizer), "vocab_size": .int(vocabSize),
                "load_ms": .number(round3(median(loadSeconds) * 1000)),
                "repeats": .int(files.first?.coldSeconds.count ?? 0), "files": .array(fs),
            ]
        }
    }

    public static func run(tokenizer path: String, texts: [String], repeats: Int, minSampleSeconds: Double = 0.2,
                           progress: (String) -> Void = { _ in }) throws -> Result {
        var loads: [Double] = []
        func load() throws -> Tokenizer {
            let t0 = clock()
            let t = try Tokenizer(contentsOf: path)
            loads.append(clock() - t0)
            return t
        }
        var files: [FileFigures] = []
        var vocab = 0
        for p in texts {
            let bytes = try MappedFile.contents(of: p)
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw FormatError.io(file: p, message: "not valid UTF-8 text")
            }
            var f = FileFigures(path: p, bytes: bytes.count, tokens: 0, coldSeconds: [], warmSeconds: [],
                                coldCPUSeconds: [], warmCPUSeconds: [])
            // A pass over a 200 KB text takes a few ms, shorter than this VM's hiccups, so each
            // sample encodes the text as many times as fit in `minSampleSeconds` and divides.
            var warmTokenizer: Tokenizer?
            for r in 0..<max(1, repeats) {
                progress("\(p): cold sample \(r + 1)/\(repeats)")
                var spent = 0.0, cpu = 0.0, passes = 0
                repeat {
                    let tok = try load()
                    vocab = tok.vocabSize
                    let t0 = clock(), c0 = threadCPU()
                    let ids = try tok.encode(text)
                    spent += clock() - t0
                    cpu += threadCPU() - c0
                    passes += 1
                    try check(ids.count, &f.tokens, p)
                    warmTokenizer = tok
                } while spent < minSampleSeconds
                f.coldSeconds.append(spent / Double(passes))
                f.coldCPUSeconds.append(cpu / Double(passes))
            }
            for r in 0..<max(1, repeats) {
                progress("\(p): warm sample \(r + 1)/\(repeats)")
                var spent = 0.0, cpu = 0.0, passes = 0
                repeat {
                    let t0 = clock(), c0 = threadCPU()
                    let ids = try warmTokenizer!.encode(text)
                    spent += clock() - t0
                    cpu += threadCPU() - c0
                    passes += 1
                    try check(ids.count, &f.tokens, p)
                } while spent < minSampleSeconds
                f.warmSeconds.append(spent / Double(passes))
                f.warmCPUSeconds.append(cpu / Double(passes))
            }
            files.append(f)
        }
        return Result(tokenizer: path, vocabSize: vocab, loadSeconds: loads, files: files)
    }

    /// Every pass must give the same ids count, or the cache changed a result.
    private static func check(_ n: Int, _ seen: inout Int, _ path: String) throws {
        if seen == 0 { seen = n; return }
        guard n == seen else {
            throw FormatError.io(file: path, message: "encoding gave \(n) tokens after \(seen) in an earlier pass")
        }
    }

    private static func clock() -> Double { read(CLOCK_MONOTONIC) }
    private static func threadCPU() -> Double { read(CLOCK_THREAD_CPUTIME_ID) }

    private static func read(_ id: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(id, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

private func median(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return .nan }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

private func round3(_ x: Double) -> Double { x.isFinite ? (x * 1000).rounded() / 1000 : 0 }
private func round6(_ x: Double) -> Double { x.isFinite ? (x * 1e6).rounded() / 1e6 : 0 }
