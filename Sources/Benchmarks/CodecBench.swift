import Foundation
import Formats
import Quantize

/// Single-thread codec throughput, for the CLI's `bench` subcommand.
public enum CodecBench {
    public static let defaultSchemes: [QuantScheme] = [
        .int8Channel, .int4(group: 128, symmetric: true), .int4(group: 32, symmetric: true),
        .int4(group: 64, symmetric: false), .fp8Tensor, .fp8Channel, .bf16, .f16,
        // ggml's blocks (GGUF): the codes section is the blocks, scales inside.
        QuantScheme("q8_0")!, QuantScheme("q4_0")!, QuantScheme("q4_1")!, QuantScheme("q5_0")!,
        QuantScheme("q5_1")!, QuantScheme("iq4_nl")!, QuantScheme("gguf-mxfp4")!,
    ]

    /// The ggml types only read (a GGUF input's k-quants and i-quants), for `dequantize`.
    public static let decodeOnlyTypes: [GGMLType] = [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq2_xxs, .iq2_xs, .iq2_s,
                                                     .iq3_xxs, .iq3_s, .iq4_xs]

    /// Single-thread `GGMLDequantize` throughput of random blocks (finite FP16 scales) of each
    /// type into a [rows, cols] Float32 matrix: GB/s of Float32 output, median of `repeats`.
    public static func dequantize(rows: Int = 4096, cols: Int = 4096, repeats: Int = 5,
                                  types: [GGMLType] = decodeOnlyTypes) -> [String: Double] {
        let n = rows * cols
        let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { out.deallocate() }
        out.initialize(repeating: 0, count: n)
        var result: [String: Double] = [:]
        for t in types {
            guard let rowBytes = t.rowBytes(cols: cols) else { continue }
            let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: rows * rowBytes)
            defer { bytes.deallocate() }
            var state: UInt64 = 0x2545_F491_4F6C_DD1D
            for i in 0..<(rows * rowBytes) {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                bytes[i] = UInt8(truncatingIfNeeded: state >> 32)
            }
            // Every FP16 field a finite small scale (0x2000 ≈ 0.0078); fields at the offsets ggml puts them.
            let halves: [Int] = t == .q2_K ? [80, 82] : t == .q3_K ? [108] : t == .q6_K ? [208]
                : (t == .q4_K || t == .q5_K) ? [0, 2] : [0]
            for b in 0..<(rows * rowBytes / t.typeSize) {
                for o in halves { bytes[b * t.typeSize + o] = 0; bytes[b * t.typeSize + o + 1] = 0x20 }
            }
            let s = median(repeats) { GGMLDequantize.decodeRows(t, bytes, cols: cols, rows: 0..<rows, into: out) }
            result[t.name] = Double(n * 4) / 1e9 / s
        }
        return result
    }

    /// Times encode, decode and fake-quant of a [rows, cols] matrix of weight-like random values
    /// (deterministic) for each scheme, on the calling thread, into buffers allocated and touched
    /// before timing. Keys are "<scheme>.encode", "<scheme>.decode", "<scheme>.fakequant"; values
    /// are GB/s of Float32 data (input for encode and fake-quant, output for decode), the median
    /// of `repeats` runs.
    public static func run(rows: Int = 4096, cols: Int = 4096, repeats: Int = 5,
                           schemes: [QuantScheme] = defaultSchemes) -> [String: Double] {
        precondition(rows > 0 && cols > 0 && repeats > 0)
        let n = rows * cols
        let source = UnsafeMutablePointer<Float>.allocate(capacity: n)
        let work = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { source.deallocate(); work.deallocate() }
        fillWeightLike(source, count: n)
        work.update(from: source, count: n)
        let gigabytes = Double(n * 4) / 1e9
        var result: [String: Double] = [:]

        for scheme in schemes {
            let layout = scheme.layout(rows: rows, cols: cols)
            let codes = UnsafeMutableRawPointer.allocate(byteCount: max(layout.codeBytes, 1), alignment: 64)
            let scales = UnsafeMutableRawPointer.allocate(byteCount: max(layout.scaleCount * layout.scaleBits / 8, 4), alignment: 64)
            let zeroPoints = UnsafeMutablePointer<UInt8>.allocate(capacity: max(layout.zeroPointCount, 1))
            let globals = UnsafeMutablePointer<Float>.allocate(capacity: max(layout.globalScaleCount, 1))
            defer { codes.deallocate(); scales.deallocate(); zeroPoints.deallocate(); globals.deallocate() }
            codes.initializeMemory(as: UInt8.self, repeating: 0, count: max(layout.codeBytes, 1))

            let encode = median(repeats) {
                Codec.encode(source, cols: cols, rows: 0..<rows, scheme: scheme,
                             codes: codes, scales: scales, zeroPoints: zeroPoints, globalScales: globals)
            }
            let decode = median(repeats) {
                Codec.decode(codes: codes, scales: scales, zeroPoints: zeroPoints, cols: cols,
                             rows: 0..<rows, scheme: scheme, into: work, globalScales: globals)
            }
            let fake = median(repeats, prepare: { work.update(from: source, count: n) }) {
                FakeQuant.apply(work, rows: rows, cols: cols, scheme: scheme)
            }
            result["\(scheme).encode"] = gigabytes / encode
            result["\(scheme).decode"] = gigabytes / decode
            result["\(scheme).fakequant"] = gigabytes / fake
        }
        return result
    }

    private static func median(_ repeats: Int, prepare: () -> Void = {}, _ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        var times: [Double] = []
        for _ in 0..<repeats {
            prepare()
            let d = clock.measure(body)
            times.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
        }
        times.sort()
        return times[times.count / 2]
    }

    /// Roughly Gaussian values of a trained projection's magnitude (sum of four uniforms, σ ≈ 0.02),
    /// with an occasional outlier so that scales are not all alike.
    static func fillWeightLike(_ w: UnsafeMutablePointer<Float>, count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) {
        var state = seed
        @inline(__always) func next() -> Float {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(state >> 40) * 0x1p-24
        }
        for i in 0..<count {
            let g = (next() + next() + next() + next() - 2) * 0.035
            w[i] = i % 997 == 0 ? g * 8 : g
        }
    }
}
