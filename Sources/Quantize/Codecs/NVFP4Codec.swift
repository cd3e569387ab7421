/// `nvfp4`: NVIDIA's NVFP4, the 4-bit format of Nemotron 3: E2M1 elements (`E2M1`) in blocks of
/// 16 consecutive input columns, each block with an FP8 E4M3 scale, under one Float32 global
/// scale per tensor — per expert for routed experts, per SSM head / B-C group for in_proj with
/// per-head scales (a block of rows, like fp8-tensor's scale).
///
/// The computation is NVIDIA ModelOpt's (`NVFP4QTensor` in
/// modelopt/torch/quantization/qtensor/nvfp4_tensor.py), step for step in Float32:
/// 1. global g = amax(|W|) / (6 · 448) — the E2M1 maximum times the E4M3 maximum (`global_scales`);
/// 2. per block, s = block_amax / (6 · g), with s = 0 replaced by 1, cast to E4M3 with
///    round-to-nearest-even (`FP8E4M3.encode`; s ≤ 448 by construction) (`scales`);
/// 3. each element, E2M1(w / (float(s_e4m3) · g)), round-to-nearest-even at every midpoint;
/// 4. decode: value(code) · (float(s_e4m3) · g).
/// Where ModelOpt would divide by zero we pick: an all-zero tensor gets g = 1 (every code is 0
/// either way). A row width not a multiple of 16 ends in a shorter block, whose scale comes from
/// its own elements — what ModelOpt's zero padding of the last block (`reduce_block_padding`)
/// gives, without storing the padding.
public struct NVFP4Codec: QuantCodec, QuantGrid {
    public static let blockSize = 16
    public init() {}
    public static func parse(_ text: String) -> Self? { text == "nvfp4" ? Self() : nil }

    public var name: String { "nvfp4" }
    public var payloadBits: Int { 4 }
    public var codeElement: ElementType { .e2m1x2 }
    public func codeBytesPerRow(cols: Int) -> Int { (cols + 1) / 2 }
    public func scalesPerRow(cols: Int) -> Int { (cols + Self.blockSize - 1) / Self.blockSize }
    public var scaleElement: ElementType { .e4m3 }
    public var rowBlockScale: RowBlockScale? { RowBlockScale(storage: .globalScales, scale: { Self.globalScale(absMax: $0) }) }

    public func describeScales(rows: Int, cols: Int) -> String {
        let partial = cols % Self.blockSize == 0 ? "" : ", last block \(cols % Self.blockSize) cols"
        return "E4M3 scales [\(rows), \(scalesPerRow(cols: cols))] per block of 16 cols\(partial)"
    }

    /// g = amax / (6 · 448); 1 for an all-zero tensor.
    @inlinable
    public static func globalScale(absMax: Float) -> Float { absMax > 0 ? absMax / 2688 : 1 }

    /// The E4M3 code of a block's scale under global scale `g`.
    @inlinable @inline(__always)
    public static func blockScaleCode(absMax: Float, global g: Float) -> UInt8 {
        let s = absMax / (6 * g)
        return FP8E4M3.encode(s == 0 ? 1 : s)
    }

    public func encode(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float,
                       codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        let g = scalesPerRow(cols: cols), cb = codeBytesPerRow(cols: cols)
        let c = codes.assumingMemoryBound(to: UInt8.self), s = scales!.assumingMemoryBound(to: UInt8.self)
        let nibbles = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, cols))
        let divisors = UnsafeMutablePointer<Float>.allocate(capacity: max(1, g))
        defer { nibbles.deallocate(); divisors.deallocate() }
        for r in rows {
            let row = w + r * cols
            for b in 0..<g {
                let j0 = b * Self.blockSize, n = min(Self.blockSize, cols - j0)
                let code = Self.blockScaleCode(absMax: finiteAbsMax(row + j0, n), global: rowScale)
                s[r * g + b] = code
                divisors[b] = FP8E4M3.decode(code) * rowScale
            }
            E2M1.encodeRow(row, cols: cols, group: Self.blockSize, divisors: divisors, nibbles: nibbles, codes: c + r * cb)
        }
    }

    public func decode(codes: UnsafeRawPointer, scales: UnsafeRawPointer?, zeroPoints: UnsafePointer<UInt8>?, rowScale: Float,
                       cols: Int, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let g = scalesPerRow(cols: cols), cb = codeBytesPerRow(cols: cols)
        let c = codes.assumingMemoryBound(to: UInt8.self), s = scales!.assumingMemoryBound(to: UInt8.self)
        let nibbles = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, cols))
        let multipliers = UnsafeMutablePointer<Float>.allocate(capacity: max(1, g))
        defer { nibbles.deallocate(); multipliers.deallocate() }
        for r in rows {
            for b in 0..<g { multipliers[b] = FP8E4M3.decode(s[r * g + b]) * rowScale }
            E2M1.decodeRow(c + r * cb, cols: cols, group: Self.blockSize, multipliers: multipliers, nibbles: nibbles,
                           into: out + r * cols)
        }
    }

    public func fakeQuant(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float) {
        fakeQuantByRoundTrip(w, cols: cols, rows: rows, rowScale: rowScale)
    }

    public var grid: QuantGrid? { self }
    public func group(cols: Int) -> Int { Self.blockSize }
    public var isGrouped: Bool { true }
    public var codeBits: Int { 4 }

    /// The block scale from the (clipped) block absmax under the row's global scale `rowScale`.
    @inline(__always)
    public func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float, rowScale: Float) -> GridParameters {
        let code = Self.blockScaleCode(absMax: finiteAbsMax(w, n) * clip, global: rowScale)
        return GridParameters(scale: FP8E4M3.decode(code) * rowScale, stored: code)
    }

    @inline(__always)
    public func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) {
        let c = E2M1.encode(w / p.scale)
        return (c, E2M1.decode(c) * p.scale)
    }

    public func store(_ p: GridParameters, at index: Int, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        scales?.assumingMemoryBound(to: UInt8.self)[index] = p.stored
    }
}
