/// A 2-D weight [rows = output channels, cols = input dim] stored in a `QuantScheme`.
///
/// Buffers, sized by `scheme.layout(rows:cols:)`:
/// - `codes`: int8 → Int8 bit patterns [rows, cols]; int4 → packed nibbles [rows, ceil(cols/2)]
///   (low nibble = even column; see `Int4Codec`); fp8 → E4M3 bytes [rows, cols]; bf16/f16 → the
///   little-endian UInt16 patterns, f32 → the little-endian Float32 patterns, row-major.
/// - `scales`: Float32 — [rows] for int8 and fp8-channel, [rows, groupsPerRow] for int4, [1] for
///   fp8-tensor, empty for bf16/f16/f32.
/// - `zeroPoints`: UInt8 0...15 [rows, groupsPerRow] for asymmetric int4, empty otherwise.
///
/// Routed experts stacked as [experts, out, in] are one [experts · out, in] matrix here; with
/// fp8-tensor that gives all experts one scale, as reference.json's baseline does.
public struct QuantizedTensor: Hashable, Sendable {
    public let scheme: QuantScheme
    public let rows: Int
    public let cols: Int
    public let codes: [UInt8]
    public let scales: [Float]
    public let zeroPoints: [UInt8]

    /// Wraps buffers read back from storage; their sizes must match `scheme.layout(rows:cols:)`.
    public init(scheme: QuantScheme, rows: Int, cols: Int, codes: [UInt8], scales: [Float], zeroPoints: [UInt8]) {
        let layout = scheme.layout(rows: rows, cols: cols)
        precondition(codes.count == layout.codeBytes && scales.count == layout.scaleCount
                     && zeroPoints.count == layout.zeroPointCount,
                     "buffer sizes do not match \(scheme) on [\(rows), \(cols)]")
        self.scheme = scheme
        self.rows = rows
        self.cols = cols
        self.codes = codes
        self.scales = scales
        self.zeroPoints = zeroPoints
    }

    /// Quantizes the row-major matrix at `w`. Codes (the big buffer) are allocated once and left
    /// uninitialized until the codec writes every byte; scales and zero points are small.
    public init(quantizing w: UnsafePointer<Float>, rows: Int, cols: Int, scheme: QuantScheme) {
        let layout = scheme.layout(rows: rows, cols: cols)
        var scales = [Float](repeating: 1, count: layout.scaleCount)
        var zeroPoints = [UInt8](repeating: 0, count: layout.zeroPointCount)
        let codes = [UInt8](unsafeUninitializedCapacity: layout.codeBytes) { c, n in
            if layout.codeBytes > 0 {
                scales.withUnsafeMutableBufferPointer { s in
                    zeroPoints.withUnsafeMutableBufferPointer { z in
                        Codec.encode(w, cols: cols, rows: 0..<rows, scheme: scheme,
                                     codes: UnsafeMutableRawPointer(c.baseAddress!),
                                     scales: s.baseAddress, zeroPoints: z.baseAddress)
                    }
                }
            }
            n = layout.codeBytes
        }
        self.scheme = scheme
        self.rows = rows
        self.cols = cols
        self.codes = codes
        self.scales = scales
        self.zeroPoints = zeroPoints
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
            scales.withUnsafeBufferPointer { s in
                zeroPoints.withUnsafeBufferPointer { z in
                    Codec.decode(codes: c.baseAddress!, scales: s.baseAddress, zeroPoints: z.baseAddress,
                                 cols: cols, rows: range, scheme: scheme, into: out)
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
