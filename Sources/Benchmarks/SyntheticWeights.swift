import Foundation
import Formats
import Model

/// Random weights for any `ModelConfig`, for benchmarks: one tensor per role is generated on first
/// use and copied out on every load, so a 128-expert MoE layer costs two expert-sized buffers, not
/// 128 (every expert of every layer gets the same numbers, which changes nothing about speed).
///
/// Values are shaped like a trained model's, because speed depends on them (denormals in a
/// decaying state, saturated exps): linear weights uniform with unit output variance, norms 1,
/// A = −(1…16), dt_bias the inverse softplus of Δ in [0.001, 0.1] as Mamba-2 initialises it.
public final class SyntheticWeights: WeightProvider, @unchecked Sendable {
    public let config: ModelConfig
    private let seed: UInt64
    private var cache: [TensorRole: FloatBuffer] = [:]
    private let lock = NSLock()

    public init(config: ModelConfig, seed: UInt64 = 0x5EED) {
        self.config = config
        self.seed = seed
    }

    public func contains(_ role: TensorRole, layer: Int?, expert: Int?) -> Bool {
        shape(role) != nil
    }

    public func load(_ role: TensorRole, layer: Int?, expert: Int?, into out: UnsafeMutablePointer<Float>) throws {
        let b = try tensor(role)
        out.update(from: b.pointer, count: b.count)
    }

    public func embeddingRows(_ ids: UnsafeBufferPointer<Int32>, into out: UnsafeMutablePointer<Float>) throws {
        let e = try tensor(.embedding), h = config.hiddenSize
        for (i, id) in ids.enumerated() {
            guard id >= 0, Int(id) < config.vocabSize else {
                throw FormatError.invalidTensor(file: "synthetic", tensor: "embeddings", message: "token id \(id) is outside the vocabulary of \(config.vocabSize)")
            }
            (out + i * h).update(from: e.pointer + Int(id) * h, count: h)
        }
    }

    /// Bytes held by generated tensors.
    public var cachedBytes: Int {
        lock.lock(); defer { lock.unlock() }
        return cache.values.reduce(0) { $0 + $1.count * 4 }
    }

    private func tensor(_ role: TensorRole) throws -> FloatBuffer {
        lock.lock(); defer { lock.unlock() }
        if let b = cache[role] { return b }
        guard let s = shape(role) else {
            throw FormatError.missingTensor(file: "synthetic", tensor: role.hubName(layer: 0, expert: 0))
        }
        let b = FloatBuffer(count: s.rows * s.cols)
        var g = Generator(seed: seed &+ UInt64(TensorRole.allCases.firstIndex(of: role)!) &* 0x9E37_79B9_7F4A_7C15)
        fill(role, b.pointer, rows: s.rows, cols: s.cols, &g)
        cache[role] = b
        return b
    }

    /// [rows, cols] of a role's tensor (vectors are one row), or nil if this model has none.
    private func shape(_ role: TensorRole) -> (rows: Int, cols: Int)? {
        let c = config, h = c.hiddenSize
        switch role {
        case .embedding, .lmHead: return (c.vocabSize, h)
        case .finalNorm, .layerNorm: return (1, h)
        default: break
        }
        for l in c.layers.indices {
            for t in TensorMap.expectedTensors(of: c, layer: l) where t.role == role {
                let rows = t.shape.count > 1 ? t.shape[0] : 1
                return (rows, t.shape.reduce(1, *) / rows)
            }
        }
        return nil
    }

    private func fill(_ role: TensorRole, _ p: UnsafeMutablePointer<Float>, rows: Int, cols: Int, _ g: inout Generator) {
        let n = rows * cols
        switch role {
        case .finalNorm, .layerNorm, .mambaNorm, .mambaD:
            p.update(repeating: 1, count: n)
        case .mambaConvBias, .routerBias:
            p.update(repeating: 0, count: n)
        case .mambaALog:
            for i in 0..<n { p[i] = Foundation.log(1 + 15 * g.unit()) }
        case .mambaDtBias:
            for i in 0..<n {
                let dt = Foundation.exp(Foundation.log(Float(0.001)) + g.unit() * Foundation.log(Float(100)))
                p[i] = dt + Foundation.log(-Foundation.expm1(-dt))     // softplus⁻¹(dt)
            }
        case .mambaConvWeight:
            g.uniform(p, count: n, scale: 0.5)
        case .embedding:
            g.uniform(p, count: n, scale: 1)
        default:
            // Uniform in ±√(3 / fan-in): unit-variance outputs from unit-variance inputs.
            g.uniform(p, count: n, scale: (3 / Float(cols)).squareRoot())
        }
    }

    /// xorshift64*: fast enough that generating a 100 MB tensor takes a fraction of a second.
    struct Generator {
        var state: UInt64
        init(seed: UInt64) { state = seed == 0 ? 0x2545_F491_4F6C_DD1D : seed }

        @inline(__always) mutating func next() -> UInt64 {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return state &* 0x2545_F491_4F6C_DD1D
        }

        /// Uniform in [0, 1).
        @inline(__always) mutating func unit() -> Float { Float(next() >> 40) * 0x1p-24 }

        mutating func uniform(_ p: UnsafeMutablePointer<Float>, count n: Int, scale: Float) {
            for i in 0..<n { p[i] = (unit() * 2 - 1) * scale }
        }
    }
}

/// Wraps a provider and adds up the time spent in its loads, so a benchmark can tell supplying
/// weights (conversion, dequantization, copying) apart from computing with them.
public final class TimedWeights: WeightProvider, @unchecked Sendable {
    public let base: WeightProvider
    public var config: ModelConfig { base.config }
    /// Seconds spent in `load` and `embeddingRows` so far (summed over threads, if a mixer ever
    /// loads from several).
    public var seconds: Double { lock.lock(); defer { lock.unlock() }; return total }
    /// CPU time of the loading threads in the same calls.
    public var cpuSeconds: Double { lock.lock(); defer { lock.unlock() }; return totalCPU }
    private var total: Double = 0, totalCPU: Double = 0
    private let lock = NSLock()

    public init(_ base: WeightProvider) { self.base = base }

    public func contains(_ role: TensorRole, layer: Int?, expert: Int?) -> Bool {
        base.contains(role, layer: layer, expert: expert)
    }

    public func load(_ role: TensorRole, layer: Int?, expert: Int?, into out: UnsafeMutablePointer<Float>) throws {
        let t0 = BenchClock.now(), c0 = BenchClock.threadCPU()
        defer { add(BenchClock.now() - t0, BenchClock.threadCPU() - c0) }
        try base.load(role, layer: layer, expert: expert, into: out)
    }

    public func embeddingRows(_ ids: UnsafeBufferPointer<Int32>, into out: UnsafeMutablePointer<Float>) throws {
        let t0 = BenchClock.now(), c0 = BenchClock.threadCPU()
        defer { add(BenchClock.now() - t0, BenchClock.threadCPU() - c0) }
        try base.embeddingRows(ids, into: out)
    }

    private func add(_ s: Double, _ c: Double) { lock.lock(); total += s; totalCPU += c; lock.unlock() }
}

enum BenchClock {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// CPU time of the whole process (every thread), user + system.
    static func cpu() -> Double { clock(CLOCK_PROCESS_CPUTIME_ID) }

    /// CPU time of the calling thread.
    static func threadCPU() -> Double { clock(CLOCK_THREAD_CPUTIME_ID) }

    private static func clock(_ id: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(id, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
