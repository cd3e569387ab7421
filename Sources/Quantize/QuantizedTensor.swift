/// A 2-D weight [rows = output channels, cols = input dim] stored in a `QuantScheme`.
///
/// Buffers, sized by `scheme.layout(rows:cols:)` (the codec's sections, docs/FORMAT.md):
/// - `codes`: int8 → Int8 bit patterns [rows, cols]; int4 → packed nibbles [rows, ceil(cols/2)]
///   (low nibble = even column; see `Int4Codec`); fp8 → E4M3 bytes [rows, cols]; mxfp4/nvfp4 →
///   packed E2M1 nibbles [rows, ceil(cols/2)]; bf16/f16 → the little-endian UInt16 patterns,
///   f32 → the little-endian Float32 patterns, row-major.
/// - `scaleBytes`: the `scales` section — Float32 [rows] for int8 and fp8-channel, [rows,
///   groupsPerRow] for int4, [1] for fp8-tensor; E8M0 bytes [rows, ceil(cols/32)] for mxfp4;
///   E4M3 bytes [rows, ceil(cols/16)] for nvfp4; empty for bf16/f16/f32. `scales` gives their values.
/// - `zeroPoints`: UInt8 0...15 [rows, groupsPerRow] for asymmetric int4, empty otherwise.
/// - `globalScales`: Float32 [1] for nvfp4, empty otherwise.
///
/// Routed experts stacked as [experts, out, in] are one [experts · out, in] matrix here; with
/// fp8-tensor that gives all experts one scale, as reference.json's baseline does.
public struct QuantizedTensor: Hashable, Sendable {
    public let scheme: QuantScheme
    public let rows: Int
    public let cols: Int
    public let codes: [UInt8]
    public let scaleBytes: [UInt8]
    public let zeroPoints: [UInt8]
    public let globalScales: [Float]

    /// Wraps buffers read back from storage; their sizes must match `scheme.layout(rows:cols:)`.
    public init(scheme: QuantScheme, rows: Int, cols: Int, codes: [UInt8], scaleBytes: [UInt8], zeroPoints: [UInt8],
                globalScales: [Float] = []) {
        let layout = scheme.layout(rows: rows, cols: cols)
        precondition(codes.count == layout.codeBytes && scaleBytes.count * 8 == layout.scaleCount * layout.scaleBits
                     && zeroPoints.count == layout.zeroPointCount && globalScales.count == layout.globalScaleCount,
                     "buffer sizes do not match \(scheme) on [\(rows), \(cols)]")
        self.scheme = scheme
        self.rows = rows
        self.cols = cols
        self.codes = codes
        self.scaleBytes = scaleBytes
        self.zeroPoints = zeroPoints
        self.globalScales = globalScales
    }

    /// Wraps buffers of a scheme with Float32 scales.
    public init(scheme: QuantScheme, rows: Int, cols: Int, codes: [UInt8], scales: [Float], zeroPoints: [UInt8]) {
        precondition(scheme.codec.scaleElement == .f32 || scales.isEmpty, "\(scheme) stores its scales as \(scheme.codec.scaleElement)")
        self.init(scheme: scheme, rows: rows, cols: cols, codes: codes,
                  scaleBytes: scales.withUnsafeBytes { Array($0) }, zeroPoints: zeroPoints)
    }

    /// Quantizes the row-major matrix at `w`. Codes (the big buffer) are allocated once and left
    /// uninitialized until the codec writes every byte; scales and zero points are small.
    public init(quantizing w: UnsafePointer<Float>, rows: Int, cols: Int, scheme: QuantScheme) {
        let layout = scheme.layout(rows: rows, cols: cols)
        // Float32 scales start at 1, what the codecs give an all-zero run, so an empty matrix has valid ones.
        var scales = scheme.codec.scaleElement == .f32
            ? [Float](repeating: 1, count: layout.scaleCount).withUnsafeBytes { Array($0) }
            : [UInt8](repeating: 0, count: layout.scaleCount * layout.scaleBits / 8)
        var zeroPoints = [UInt8](repeating: 0, count: layout.zeroPointCount)
        var globals = [Float](repeating: 1, count: layout.globalScaleCount)
        let codes = [UInt8](unsafeUninitializedCapacity: layout.codeBytes) { c, n in
            if layout.codeBytes > 0 {
                scales.withUnsafeMutableBytes { s in
                    zeroPoints.withUnsafeMutableBufferPointer { z in
                        globals.withUnsafeMutableBufferPointer { g in
                            Codec.encode(w, cols: cols, rows: 0..<rows, scheme: scheme,
                                         codes: UnsafeMutableRawPointer(c.baseAddress!),
                                         scales: s.baseAddress, zeroPoints: z.baseAddress, globalScales: g.baseAddress)
                        }
                    }
                }
            }
            n = layout.codeBytes
        }
        self.scheme = scheme
        self.rows = rows
        self.cols = cols
        self.codes = codes
        self.scaleBytes = scales
        self.zeroPoints = zeroPoints
        self.globalScales = globals
    }

    /// The value of every scale in the `scales` section (Float32 as stored; E8M0 as 2^(e − 127);
    /// E4M3 decoded).
    public var scales: [Float] {
        switch scheme.codec.scaleElement {
        case .f32: return scaleBytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        case .e8m0: return scaleBytes.map { E2M1.e8m0Value($0) }
        case .e4m3: return scaleBytes.map { FP8E4M3.decode($0) }
        default: preconditionFailure("\(scheme): unsupported scale element")
        }
    }

    /// Writes the dequantized [rows, cols] matrix to `out`.
    public func dequantize(into out: UnsafeMutablePointer<Float>) {
        dequantize(rows: 0..<rows, into: out)
    }

    /// Rows `rows` only; `out` points to row 0 of the full [rows, cols] output.
    public func dequantize(rows range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows)
        guard !range.isEmpty, cols > 0 else { return }
        codes.withUnsafeBytes { c in
            scaleBytes.withUnsafeBytes { s in
                zeroPoints.withUnsafeBufferPointer { z in
                    globalScales.withUnsafeBufferPointer { g in
                        Codec.decode(codes: c.baseAddress!, scales: s.baseAddress, zeroPoints: z.baseAddress,
                                     cols: cols, rows: range, scheme: scheme, into: out, globalScales: g.baseAddress)
                    }
                }
            }
        }
    }

    public func dequantized() -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * cols) { out, n in
            if let base = out.baseAddress { dequantize(into: base) }
            n = rows * cols
        }
    }

    public var layout: QuantLayout { scheme.layout(rows: rows, cols: cols) }
    public var bitsPerWeight: Double { scheme.bitsPerWeight(rows: rows, cols: cols) }
}

/// Quantizes the row-major [rows, cols] matrix at `w` with `scheme`.
public func quantize(_ w: UnsafePointer<Float>, rows: Int, cols: Int, scheme: QuantScheme) -> QuantizedTensor {
    QuantizedTensor(quantizing: w, rows: rows, cols: cols, scheme: scheme)
}
