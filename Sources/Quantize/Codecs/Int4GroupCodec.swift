import Formats

/// `int4-gN-sym` / `int4-gN-asym`: INT4 in groups of `group` input columns, one Float32 scale per
/// group and, asymmetric, one UInt8 zero point per group (`Int4Codec`). Codes pack two per byte,
/// low nibble = even column; a group wider than a row is one group per row, and the last group
/// of a row may be partial.
public struct Int4GroupCodec: QuantCodec, QuantGrid {
    public let groupSize: Int
    public let symmetric: Bool
    public init(group: Int, symmetric: Bool) { self.groupSize = group; self.symmetric = symmetric }

    /// `int4-gN`, `int4-gN-sym`, `int4-gN-asym` with 0 < N ≤ `QuantScheme.maxInt4Group`.
    public static func parse(_ t: String) -> Self? {
        guard t.hasPrefix("int4-g") else { return nil }
        let parts = t.dropFirst("int4-g".count).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2,
              !parts[0].isEmpty, parts[0].utf8.count <= 9,
              parts[0].utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let group = Int(parts[0]), group > 0, group <= QuantScheme.maxInt4Group
        else { return nil }
        if parts.count == 1 { return Self(group: group, symmetric: true) }
        switch parts[1] {
        case "sym": return Self(group: group, symmetric: true)
        case "asym": return Self(group: group, symmetric: false)
        default: return nil
        }
    }

    public var name: String { "int4-g\(groupSize)-\(symmetric ? "sym" : "asym")" }
    public var payloadBits: Int { 4 }
    public var codeElement: ElementType { .u4x2 }
    public func codeBytesPerRow(cols: Int) -> Int { Int4Codec.bytesPerRow(cols: cols) }
    public func scalesPerRow(cols: Int) -> Int { Int4Codec.groupsPerRow(cols: cols, group: groupSize) }
    public var hasZeroPoints: Bool { !symmetric }

    public func describeScales(rows: Int, cols: Int) -> String {
        let g = scalesPerRow(cols: cols)
        let what = symmetric ? "scales" : "scales + zero points"
        let partial = cols % groupSize == 0 ? "" : ", last group \(cols % groupSize) cols"
        return "\(what) [\(rows), \(g)] per group of \(groupSize) cols\(partial)"
    }

    public func encode(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float,
                       codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        let c = codes.assumingMemoryBound(to: UInt8.self), s = scales!.assumingMemoryBound(to: Float.self)
        if symmetric {
            Int4Codec.encodeSymmetric(w, cols: cols, rows: rows, group: groupSize, codes: c, scales: s)
        } else {
            Int4Codec.encodeAsymmetric(w, cols: cols, rows: rows, group: groupSize, codes: c, scales: s, zeroPoints: zeroPoints!)
        }
    }

    public func decode(codes: UnsafeRawPointer, scales: UnsafeRawPointer?, zeroPoints: UnsafePointer<UInt8>?, rowScale: Float,
                       cols: Int, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let c = codes.assumingMemoryBound(to: UInt8.self), s = scales!.assumingMemoryBound(to: Float.self)
        if symmetric {
            Int4Codec.decodeSymmetric(codes: c, scales: s, cols: cols, rows: rows, group: groupSize, into: out)
        } else {
            Int4Codec.decodeAsymmetric(codes: c, scales: s, zeroPoints: zeroPoints!, cols: cols, rows: rows, group: groupSize, into: out)
        }
    }

    public func fakeQuant(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float) {
        if symmetric { Int4Codec.fakeQuantSymmetric(w, cols: cols, rows: rows, group: groupSize) }
        else { Int4Codec.fakeQuantAsymmetric(w, cols: cols, rows: rows, group: groupSize) }
    }

    public var grid: QuantGrid? { self }
    public func group(cols: Int) -> Int { groupSize }
    public var isGrouped: Bool { true }
    public var codeBits: Int { 4 }

    @inline(__always)
    public func parameters(_ w: UnsafePointer<Float>, _ n: Int, clip: Float, rowScale: Float) -> GridParameters {
        if symmetric { return GridParameters(scale: safeScale(absMax: finiteAbsMax(w, n) * clip, levels: 7)) }
        if clip == 1 { let (s, z) = Int4Codec.asymmetricParameters(w, n); return GridParameters(scale: s, zero: z) }
        let (lo, hi) = rangeWithZero(w, n)
        let s = (hi * clip - lo * clip) / 15
        guard s > 0, s.isFinite else { return GridParameters(scale: 1) }
        return GridParameters(scale: s, zero: clamp(roundHalfEven(-(lo * clip) / s), 0, 15))
    }

    @inline(__always)
    public func quantize(_ w: Float, _ p: GridParameters) -> (UInt8, Float) {
        if symmetric {
            let q = clamp(roundHalfEven(w / p.scale), -8, 7)
            return (UInt8(truncatingIfNeeded: q) & 0x0F, Float(q) * p.scale)
        }
        let q = clamp(roundHalfEven(w / p.scale) &+ p.zero, 0, 15)
        return (UInt8(truncatingIfNeeded: q), Float(q &- p.zero) * p.scale)
    }

    public func store(_ p: GridParameters, at index: Int, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        scales?.assumingMemoryBound(to: Float.self)[index] = p.scale
        if !symmetric { zeroPoints?[index] = UInt8(truncatingIfNeeded: p.zero) }
    }
}
