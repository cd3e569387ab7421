/// Encode/decode of a whole matrix (or a row range of it) in any scheme, over caller-owned
/// buffers laid out as `scheme.layout(rows: totalRows, cols: cols)` describes (see
/// `QuantizedTensor` for the bytes). Dispatches once per call to the scheme's `QuantCodec`.
///
/// Pointers address row 0 of the whole matrix; `rows` picks the rows to work on, so disjoint row
/// ranges of one tensor can go to different threads. Codes are bytes: BF16/F16/F32 codes are the
/// little-endian element bit patterns, INT8 codes are Int8 bit patterns.
public enum Codec {
    /// Schemes with a per-tensor scale (fp8-tensor; NVFP4's global scale) need the scale of the
    /// whole tensor: pass `tensorScale` (`Codec.tensorScale`) when `rows` is not all of it. It is
    /// stored by the call whose range starts at row 0, in `scales[0]` (fp8-tensor) or
    /// `globalScales[0]` (NVFP4). Buffers may be nil for schemes that have none.
    public static func encode(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>, scheme: QuantScheme,
                              codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?,
                              zeroPoints: UnsafeMutablePointer<UInt8>?, tensorScale: Float? = nil,
                              globalScales: UnsafeMutablePointer<Float>? = nil) {
        let codec = scheme.codec
        var s: Float = 1
        if let rule = codec.rowBlockScale {
            s = tensorScale ?? {
                precondition(rows.lowerBound == 0, "\(scheme) on a row range needs the tensor's scale")
                return rule.scale(finiteAbsMax(w, rows.upperBound * cols))
            }()
            if rows.lowerBound == 0 {
                switch rule.storage {
                case .scales: scales!.assumingMemoryBound(to: Float.self)[0] = s
                case .globalScales: globalScales![0] = s
                }
            }
        }
        codec.encode(w, cols: cols, rows: rows, rowScale: s, codes: codes,
                     scales: codec.rowBlockScale?.storage == .scales ? nil : scales, zeroPoints: zeroPoints)
    }

    public static func decode(codes: UnsafeRawPointer, scales: UnsafeRawPointer?,
                              zeroPoints: UnsafePointer<UInt8>?, cols: Int, rows: Range<Int>,
                              scheme: QuantScheme, into out: UnsafeMutablePointer<Float>,
                              globalScales: UnsafePointer<Float>? = nil) {
        let codec = scheme.codec
        var s: Float = 1
        switch codec.rowBlockScale?.storage {
        case .scales?: s = scales!.assumingMemoryBound(to: Float.self)[0]
        case .globalScales?: s = globalScales![0]
        case nil: break
        }
        codec.decode(codes: codes, scales: codec.rowBlockScale?.storage == .scales ? nil : scales, zeroPoints: zeroPoints,
                     rowScale: s, cols: cols, rows: rows, into: out)
    }

    /// The per-tensor scale of `count` weights for a scheme that has one (fp8-tensor, NVFP4); 1 otherwise.
    public static func tensorScale(_ w: UnsafePointer<Float>, count: Int, scheme: QuantScheme) -> Float {
        scheme.codec.rowBlockScale?.scale(finiteAbsMax(w, count)) ?? 1
    }
}
