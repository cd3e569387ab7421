/// A stretch of UTF-8 decoded to Unicode scalars, with one class byte per scalar and the byte
/// offset of each scalar. Pre-tokenizer regexes work on scalars, never on Characters: "\r\n" is
/// one Character in Swift but two scalars to Oniguruma, and the fixture text is full of them.
///
/// The buffers grow and are reused from piece to piece, so decoding allocates only when a piece
/// is longer than any before it.
struct ScalarText {
    private(set) var scalars: [UInt32] = []
    private(set) var classes: [UInt8] = []
    /// `offsets[i]` is where scalar i starts; `offsets[count]` is the byte length.
    private(set) var offsets: [Int] = [0]
    private(set) var count = 0

    mutating func load(_ bytes: UnsafeBufferPointer<UInt8>, table: ScalarTable, bmp: UnsafeBufferPointer<UInt8>) {
        let n = bytes.count
        if scalars.count < n {
            scalars = [UInt32](repeating: 0, count: n)
            classes = [UInt8](repeating: 0, count: n)
            offsets = [Int](repeating: 0, count: n + 1)
        }
        var k = 0
        scalars.withUnsafeMutableBufferPointer { sc in
            classes.withUnsafeMutableBufferPointer { cl in
                offsets.withUnsafeMutableBufferPointer { off in
                    var i = 0
                    while i < n {
                        let b0 = bytes[i]
                        var c = UInt32(b0)
                        var len = 1
                        // The input comes from a Swift String, so it is valid UTF-8; the length
                        // checks only keep a truncated sequence from reading past the end.
                        if b0 >= 0xF0, i + 3 < n {
                            c = (UInt32(b0 & 0x07) << 18) | (UInt32(bytes[i + 1] & 0x3F) << 12)
                                | (UInt32(bytes[i + 2] & 0x3F) << 6) | UInt32(bytes[i + 3] & 0x3F)
                            len = 4
                        } else if b0 >= 0xE0, i + 2 < n {
                            c = (UInt32(b0 & 0x0F) << 12) | (UInt32(bytes[i + 1] & 0x3F) << 6)
                                | UInt32(bytes[i + 2] & 0x3F)
                            len = 3
                        } else if b0 >= 0xC0, i + 1 < n {
                            c = (UInt32(b0 & 0x1F) << 6) | UInt32(bytes[i + 1] & 0x3F)
                            len = 2
                        } else if b0 >= 0x80 {
                            c = 0xFFFD
                        }
                        sc[k] = c
                        cl[k] = c < 0x10000 ? bmp[Int(c)] : table.compute(c)
                        off[k] = i
                        k += 1
                        i += len
                    }
                    off[k] = n
                }
            }
        }
        count = k
    }

    func withView<R>(_ body: (ScalarView) -> R) -> R {
        scalars.withUnsafeBufferPointer { sc in
            classes.withUnsafeBufferPointer { cl in
                body(ScalarView(scalars: UnsafeBufferPointer(rebasing: sc[0..<count]),
                                classes: UnsafeBufferPointer(rebasing: cl[0..<count])))
            }
        }
    }
}

struct ScalarView {
    let scalars: UnsafeBufferPointer<UInt32>
    let classes: UnsafeBufferPointer<UInt8>
    var count: Int { scalars.count }
}

/// A pre-tokenizer split pattern: finds matches the way Hugging Face tokenizers' Oniguruma
/// `find_iter` does (leftmost, non-overlapping, an empty match never right after the previous one).
protocol SplitPattern: Sendable {
    /// Which per-scalar class bytes the matcher reads.
    var table: ScalarTable { get }
    /// Appends each match as a (start, end) pair of scalar indices.
    func appendMatches(in text: ScalarView, to out: inout [Int]) throws(PatternLimitError)
    /// True if text may be cut after any "\n" that is followed by an ASCII letter or digit and each
    /// side matched on its own with the same result: no match spans such a cut and nothing on one
    /// side looks at the other. Lets a long text be pre-tokenized in chunks of bounded memory.
    var cutsAfterNewline: Bool { get }
}

extension SplitPattern {
    var cutsAfterNewline: Bool { false }
}
