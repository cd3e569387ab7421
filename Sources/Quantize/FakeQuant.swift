/// Quantize-then-dequantize in place (Float → Float), for evaluating a quantized model with a
/// Float32 forward pass. The result is bit-identical to `Codec.decode(Codec.encode(w))` for
/// every scheme: each codec's fake-quant does the same arithmetic as its encode + decode.
public enum FakeQuant {
    public static func apply(_ w: UnsafeMutablePointer<Float>, rows: Int, cols: Int, scheme: QuantScheme) {
        apply(w, cols: cols, rows: 0..<rows, scheme: scheme)
    }

    /// Rows `rows` of the matrix at `w` (row 0). Schemes with a per-tensor scale (fp8-tensor,
    /// NVFP4) on anything but the whole matrix need `tensorScale` (see `Codec.tensorScale`).
    public static func apply(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>, scheme: QuantScheme,
                             tensorScale: Float? = nil) {
        var s: Float = 1
        if let rule = scheme.codec.rowBlockScale {
            s = tensorScale ?? {
                precondition(rows.lowerBound == 0, "\(scheme) on a row range needs the tensor's scale")
                return rule.scale(finiteAbsMax(w, rows.upperBound * cols))
            }()
        }
        scheme.codec.fakeQuant(w, cols: cols, rows: rows, rowScale: s)
    }
}
