/// Scheme-dispatched encode/decode over caller-owned buffers laid out as
/// `scheme.layout(rows: totalRows, cols: cols)` describes (see `QuantizedTensor` for the bytes).
///
/// Pointers address row 0 of the whole matrix; `rows` picks the rows to work on, so disjoint row
/// ranges of one tensor can go to different threads. Codes are bytes: BF16/F16/F32 codes are the
/// little-endian element bit patterns, INT8 codes are Int8 bit patterns.
public enum Codec {
    /// fp8-tensor needs the scale of the whole tensor; pass `tensorScale`
    /// (`FP8E4M3.tensorScale`, or the max of the parts' `FP8E4M3.absMax` through `FP8E4M3.scale`)
    /// when `rows` is not all of it. It is stored in `scales[0]` by the call whose range starts at
    /// row 0. `scales`/`zeroPoints` may be nil for schemes that have none.
    public static func encode(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>, scheme: QuantScheme,
                              codes: UnsafeMutableRawPointer, scales: UnsafeMutablePointer<Float>?,
                              zeroPoints: UnsafeMutablePointer<UInt8>?, tensorScale: Float? = nil) {
        let n = rows.count * cols
        let first = rows.lowerBound * cols
        switch scheme {
        case .int8Channel:
            codes.withMemoryRebound(to: Int8.self, capacity: rows.upperBound * cols) { c in
                Int8Codec.encode(w, cols: cols, rows: rows, codes: c, scales: scales!)
            }
        case let .int4(group, true):
            Int4Codec.encodeSymmetric(w, cols: cols, rows: rows, group: group,
                                      codes: codes.assumingMemoryBound(to: UInt8.self), scales: scales!)
        case let .int4(group, false):
            Int4Codec.encodeAsymmetric(w, cols: cols, rows: rows, group: group,
                                       codes: codes.assumingMemoryBound(to: UInt8.self), scales: scales!,
                                       zeroPoints: zeroPoints!)
        case .fp8Tensor:
            let s = tensorScale ?? {
                precondition(rows.lowerBound == 0, "fp8-tensor on a row range needs the tensor's scale")
                return FP8E4M3.tensorScale(w, count: rows.upperBound * cols)
            }()
            if rows.lowerBound == 0 { scales![0] = s }
            FP8E4M3.encode(w + first, count: n, scale: s, codes: codes.assumingMemoryBound(to: UInt8.self) + first)
        case .fp8Channel:
            FP8E4M3.encodeChannel(w, cols: cols, rows: rows, codes: codes.assumingMemoryBound(to: UInt8.self),
                                  scales: scales!)
        case .bf16:
            codes.withMemoryRebound(to: UInt16.self, capacity: rows.upperBound * cols) { c in
                BF16Codec.encode(w + first, count: n, into: c + first)
            }
        case .f16:
            codes.withMemoryRebound(to: UInt16.self, capacity: rows.upperBound * cols) { c in
                F16Codec.encode(w + first, count: n, into: c + first)
            }
        case .f32:
            (codes + first * 4).copyMemory(from: w + first, byteCount: n * 4)
        }
    }

    public static func decode(codes: UnsafeRawPointer, scales: UnsafePointer<Float>?,
                              zeroPoints: UnsafePointer<UInt8>?, cols: Int, rows: Range<Int>,
                              scheme: QuantScheme, into out: UnsafeMutablePointer<Float>) {
        let n = rows.count * cols
        let first = rows.lowerBound * cols
        switch scheme {
        case .int8Channel:
            codes.withMemoryRebound(to: Int8.self, capacity: rows.upperBound * cols) { c in
                Int8Codec.decode(codes: c, scales: scales!, cols: cols, rows: rows, into: out)
            }
        case let .int4(group, true):
            Int4Codec.decodeSymmetric(codes: codes.assumingMemoryBound(to: UInt8.self), scales: scales!,
                                      cols: cols, rows: rows, group: group, into: out)
        case let .int4(group, false):
            Int4Codec.decodeAsymmetric(codes: codes.assumingMemoryBound(to: UInt8.self), scales: scales!,
                                       zeroPoints: zeroPoints!, cols: cols, rows: rows, group: group, into: out)
        case .fp8Tensor:
            FP8E4M3.decode(codes: codes.assumingMemoryBound(to: UInt8.self) + first, count: n, scale: scales![0],
                           into: out + first)
        case .fp8Channel:
            FP8E4M3.decodeChannel(codes: codes.assumingMemoryBound(to: UInt8.self), scales: scales!, cols: cols,
                                  rows: rows, into: out)
        case .bf16:
            codes.withMemoryRebound(to: UInt16.self, capacity: rows.upperBound * cols) { c in
                BF16Codec.decode(c + first, count: n, into: out + first)
            }
        case .f16:
            codes.withMemoryRebound(to: UInt16.self, capacity: rows.upperBound * cols) { c in
                F16Codec.decode(c + first, count: n, into: out + first)
            }
        case .f32:
            UnsafeMutableRawPointer(out + first).copyMemory(from: codes + first * 4, byteCount: n * 4)
        }
    }
}
