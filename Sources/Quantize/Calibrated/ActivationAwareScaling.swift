/// The `awq` calibration method's search (Lin et al., 2023): per input channel j a scale
/// s_j = rms(x_j)^α, with α on a grid, multiplies column j of every weight reading that input and
/// divides the producer of the input (a norm's weight), which leaves the model's function
/// unchanged before quantization; quantization then spends its grid where the input is loud.
/// The α kept is the one with the least activation-weighted error Σ E[x_j²] (w − ŵ)² summed over
/// the consumers, α = 0 (no scaling) included, so the result is never worse on that measure.
public enum ActivationAwareScaling {
    public struct Consumer {
        public var weights: UnsafePointer<Float>
        public var rows: Int
        public var scheme: QuantScheme
        public init(weights: UnsafePointer<Float>, rows: Int, scheme: QuantScheme) {
            self.weights = weights; self.rows = rows; self.scheme = scheme
        }
    }

    /// Returns (scales, α). `meanSquares` is E[x_j²] of the shared input.
    public static func search(consumers: [Consumer], cols: Int, meanSquares: [Float], steps: Int = 20) -> ([Float], Float) {
        let rms = meanSquares.map { ($0.isFinite && $0 > 0 ? $0 : 0).squareRoot() }
        let positive = rms.filter { $0 > 0 }
        guard !positive.isEmpty, !consumers.isEmpty else { return ([Float](repeating: 1, count: cols), 0) }
        let floor = positive.min()!
        var best = [Float](repeating: 1, count: cols), bestAlpha: Float = 0
        var bestErr = Float.infinity
        let maxRows = consumers.map(\.rows).max()!
        let work = UnsafeMutablePointer<Float>.allocate(capacity: maxRows * cols)
        defer { work.deallocate() }
        for k in 0...steps {
            let alpha = Float(k) / Float(steps)
            var s = rms.map { power(max($0, floor), alpha) }
            // Centre the scales geometrically so the scaled weights keep their overall magnitude.
            let mid = (s.max()! * s.min()!).squareRoot()
            s = s.map { $0 / mid }
            var err: Float = 0
            for c in consumers {
                let n = c.rows * cols
                for r in 0..<c.rows { for j in 0..<cols { work[r * cols + j] = c.weights[r * cols + j] * s[j] } }
                FakeQuant.apply(work, rows: c.rows, cols: cols, scheme: c.scheme)
                for i in 0..<n {
                    let j = i % cols
                    let d = c.weights[i] - work[i] / s[j]
                    err += meanSquares[j] * d * d
                }
            }
            if err < bestErr { bestErr = err; best = s; bestAlpha = alpha }
        }
        return (best, bestAlpha)
    }
}

/// Multiplies every column j of the rows it sees by `scale[j]` (a weight reading a rescaled input,
/// or a norm weight producing it), then encodes with `inner` (round to nearest when nil).
public struct ColumnScaledEncoder: SegmentEncoder {
    public let scale: [Float]
    public let inner: SegmentEncoder?

    public init(scale: [Float], inner: SegmentEncoder?) {
        self.scale = scale; self.inner = inner
    }

    public func transform(_ w: UnsafeMutablePointer<Float>, rows n: Int, cols: Int, segment: TensorPlan.Segment, firstRow: Int) {
        precondition(cols == scale.count, "column scales for \(scale.count) columns, weight has \(cols)")
        scale.withUnsafeBufferPointer { sp in
            let s = sp.baseAddress!
            for r in 0..<n { let row = w + r * cols; for j in 0..<cols { row[j] *= s[j] } }
        }
        inner?.transform(w, rows: n, cols: cols, segment: segment, firstRow: firstRow)
    }

    public func encode(_ w: UnsafeMutablePointer<Float>, rows n: Int, cols: Int, segment: TensorPlan.Segment, firstRow: Int,
                       blockScales: [Float]?, codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?,
                       zeroPoints: UnsafeMutablePointer<UInt8>?) {
        if let i = inner {
            i.encode(w, rows: n, cols: cols, segment: segment, firstRow: firstRow, blockScales: blockScales, codes: codes,
                     scales: scales, zeroPoints: zeroPoints)
        } else {
            SegmentCodec.encode(w, rows: n, cols: cols, segment: segment, firstRow: firstRow, blockScales: blockScales,
                                codes: codes, scales: scales, zeroPoints: zeroPoints)
        }
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) private func power(_ a: Float, _ b: Float) -> Float { powf(a, b) }
#else
import Darwin
@inline(__always) private func power(_ a: Float, _ b: Float) -> Float { powf(a, b) }
#endif
