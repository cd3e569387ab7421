/// The shape of the activations moving through the model: `windows` independent sequences of
/// `length` tokens each, stored as [windows × length, hidden] rows. Linear layers see all rows at
/// once (one sgemm); sequence mixers (Mamba scan, attention) work window by window.
public struct Batch: Sendable, Equatable {
    public var windows: Int
    public var length: Int
    public var rows: Int { windows * length }
    public init(windows: Int, length: Int) { self.windows = windows; self.length = length }
}
