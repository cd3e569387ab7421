/// Quantize-then-dequantize in place (Float → Float), for evaluating a quantized model with a
/// Float32 forward pass. The result is bit-identical to `Codec.decode(Codec.encode(w))` for
/// every scheme: each codec's fake-quant loop does the same arithmetic as its encode + decode.
public enum FakeQuant {
    public static func apply(_ w: UnsafeMutablePointer<Float>, rows: Int, cols: Int, scheme: QuantScheme) {
        apply(w, cols: cols, rows: 0..<rows, scheme: scheme)
    }

    /// Rows `rows` of the matrix at `w` (row 0). fp8-tensor on anything but the whole matrix needs
    /// `tensorScale` (see `FP8E4M3.tensorScale`).
    public static func apply(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>, scheme: QuantScheme,
                             tensorScale: Float? = nil) {
        let n = rows.count * cols
        let first = w + rows.lowerBound * cols
        switch scheme {
        case .int8Channel: Int8Codec.fakeQuant(w, cols: cols, rows: rows)
        case let .int4(group, true): Int4Codec.fakeQuantSymmetric(w, cols: cols, rows: rows, group: group)
        case let .int4(group, false): Int4Codec.fakeQuantAsymmetric(w, cols: cols, rows: rows, group: group)
        case .fp8Tensor:
            let s = tensorScale ?? {
                precondition(rows.lowerBound == 0, "fp8-tensor on a row range needs the tensor's scale")
                return FP8E4M3.tensorScale(w, count: rows.upperBound * cols)
            }()
            FP8E4M3.fakeQuant(first, count: n, scale: s)
        case .fp8Channel: FP8E4M3.fakeQuantChannel(w, cols: cols, rows: rows)
        case .bf16: BF16Codec.fakeQuant(first, count: n)
        case .f16: F16Codec.fakeQuant(first, count: n)
        case .f32: break
        }
    }
}
