/// Replaces round-to-nearest for the quantized segments of one tensor: calibrated conversion
/// plugs GPTQ, clipping search or activation-aware scaling in here while the converter keeps
/// streaming rows, threading and writing sections.
///
/// Calls come from several threads at once for disjoint row ranges, so an encoder must only read
/// shared state.
public protocol SegmentEncoder: Sendable {
    /// Rewrites rows [firstRow, firstRow + n) of `segment` in place right after they are loaded,
    /// before block scales (fp8-tensor, NVFP4's global scale) are measured and before `encode` (activation-aware scaling).
    func transform(_ w: UnsafeMutablePointer<Float>, rows n: Int, cols: Int, segment: TensorPlan.Segment, firstRow: Int)

    /// Encodes rows [firstRow, firstRow + n) of `segment` (held in `w`, which may be overwritten)
    /// exactly as `SegmentCodec.encode` lays them out. `scales` holds the codec's scale elements
    /// (`QuantCodec.scaleElement`), addressed from the first of these rows; `blockScales` are
    /// the segment's block scales for codecs with a `rowBlockScale`.
    func encode(_ w: UnsafeMutablePointer<Float>, rows n: Int, cols: Int, segment: TensorPlan.Segment, firstRow: Int,
                blockScales: [Float]?, codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?,
                zeroPoints: UnsafeMutablePointer<UInt8>?)
}

extension SegmentEncoder {
    public func transform(_ w: UnsafeMutablePointer<Float>, rows n: Int, cols: Int, segment: TensorPlan.Segment, firstRow: Int) {}
}
