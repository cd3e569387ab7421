/// What a `Split` pre-tokenizer keeps of the matches and of the text between them
/// (Hugging Face's `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable, CaseIterable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}

struct SplitStep: Sendable {
    let pattern: any SplitPattern
    let behavior: SplitBehavior
    let invert: Bool
}

struct ByteLevelStep: Sendable {
    let addPrefixSpace: Bool
    let useRegex: Bool
}

/// The pre-tokenizer pipeline: `Split` steps, then optionally `ByteLevel` (which must come last,
/// since after it the text is spelled in byte-level characters that a later regex would see).
struct PreTokenizer: Sendable {
    let splits: [SplitStep]
    let byteLevel: ByteLevelStep?

    static let gpt2 = GPT2Pattern()
}

/// Buffers reused from piece to piece within one encode call.
struct SplitScratch {
    var text = ScalarText()
    var matches: [Int] = []
    var segments: [(Int, Int, Bool)] = []
    var merged: [(Int, Int)] = []
    let bmp = ScalarTable.bmp
}

extension PreTokenizer {
    /// Long texts are pre-tokenized this many bytes at a time (up to the next safe cut), so the
    /// per-scalar buffers stay small whatever the input size.
    static let chunkBytes = 1 << 16

    /// Calls `emit` with every pre-token of `text[lo..<hi]`.
    func run(_ text: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, scratch s: inout SplitScratch,
             emit: (UnsafeBufferPointer<UInt8>) -> Void) throws(PatternLimitError) {
        guard lo < hi else { return }
        // Isolated keeps every segment, so cutting between two matches changes nothing.
        guard let first = splits.first, first.behavior == .isolated, first.pattern.cutsAfterNewline,
              hi - lo > Self.chunkBytes else {
            return try runWhole(text, lo, hi, scratch: &s, emit: emit)
        }
        var a = lo
        while a < hi {
            var b = min(a + Self.chunkBytes, hi)
            while b < hi && !(text[b - 1] == 0x0A && Self.isASCIIAlphanumeric(text[b])) { b += 1 }
            try runWhole(text, a, b, scratch: &s, emit: emit)
            a = b
        }
    }

    private static func isASCIIAlphanumeric(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }

    private func runWhole(_ text: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, scratch s: inout SplitScratch,
                          emit: (UnsafeBufferPointer<UInt8>) -> Void) throws(PatternLimitError) {
        var ranges = [(lo, hi)]
        var next: [(Int, Int)] = []
        for step in splits {
            next.removeAll(keepingCapacity: true)
            for (a, b) in ranges {
                try split(UnsafeBufferPointer(rebasing: text[a..<b]), base: a, step: step, scratch: &s, into: &next)
            }
            swap(&ranges, &next)
        }
        guard let byteLevel else {
            for (a, b) in ranges { emit(UnsafeBufferPointer(rebasing: text[a..<b])) }
            return
        }
        let regex = SplitStep(pattern: Self.gpt2, behavior: .isolated, invert: false)
        var words: [(Int, Int)] = []
        func finish(_ piece: UnsafeBufferPointer<UInt8>) throws(PatternLimitError) {
            guard byteLevel.useRegex else { return emit(piece) }
            words.removeAll(keepingCapacity: true)
            try split(piece, base: 0, step: regex, scratch: &s, into: &words)
            for (x, y) in words { emit(UnsafeBufferPointer(rebasing: piece[x..<y])) }
        }
        var prefixed: [UInt8] = []
        for (a, b) in ranges {
            let piece = UnsafeBufferPointer(rebasing: text[a..<b])
            // Hugging Face prepends the space to every piece that reaches ByteLevel, not only the
            // first of the text.
            if byteLevel.addPrefixSpace && piece[0] != 0x20 {
                prefixed.removeAll(keepingCapacity: true)
                prefixed.append(0x20)
                prefixed.append(contentsOf: piece)
                var failure: PatternLimitError?
                prefixed.withUnsafeBufferPointer { p in
                    do { try finish(p) } catch { failure = error as? PatternLimitError }
                }
                if let failure { throw failure }
            } else {
                try finish(piece)
            }
        }
    }

    /// Splits one piece, appending the kept sub-ranges offset by `base`.
    func split(_ piece: UnsafeBufferPointer<UInt8>, base: Int, step: SplitStep,
               scratch s: inout SplitScratch, into out: inout [(Int, Int)]) throws(PatternLimitError) {
        let table = step.pattern.table
        let bmp = table == .hand ? s.bmp.hand : s.bmp.category
        bmp.withUnsafeBufferPointer { s.text.load(piece, table: table, bmp: $0) }
        var matches: [Int] = []
        swap(&matches, &s.matches)
        matches.removeAll(keepingCapacity: true)
        var failure: PatternLimitError?
        s.text.withView { v in
            do { try step.pattern.appendMatches(in: v, to: &matches) } catch { failure = error as? PatternLimitError }
        }
        if let failure { throw failure }

        // Hugging Face's `Pattern::find_matches`: matches and the gaps between them, covering the piece.
        let offsets = s.text.offsets
        if step.behavior == .isolated {
            // Every segment is kept as it is, so they go straight out.
            var prev = 0
            var m = 0
            while m < matches.count {
                let start = offsets[matches[m]], end = offsets[matches[m + 1]]
                if prev < start { out.append((base + prev, base + start)) }
                if start < end { out.append((base + start, base + end)) }
                prev = end
                m += 2
            }
            if prev < piece.count { out.append((base + prev, base + piece.count)) }
            swap(&matches, &s.matches)
            return
        }
        s.segments.removeAll(keepingCapacity: true)
        var prev = 0
        var m = 0
        while m < matches.count {
            let start = offsets[matches[m]], end = offsets[matches[m + 1]]
            if prev != start { s.segments.append((prev, start, step.invert)) }
            s.segments.append((start, end, !step.invert))
            prev = end
            m += 2
        }
        if prev != piece.count { s.segments.append((prev, piece.count, step.invert)) }
        swap(&matches, &s.matches)

        // Hugging Face's `NormalizedString::split` fold for each behaviour; empty pieces are dropped.
        switch step.behavior {
        case .isolated:
            break
        case .removed:
            for (a, b, isMatch) in s.segments where a < b && !isMatch { out.append((base + a, base + b)) }
        case .mergedWithPrevious, .mergedWithNext, .contiguous:
            var merged: [(Int, Int)] = []
            swap(&merged, &s.merged)
            merged.removeAll(keepingCapacity: true)
            var previousMatch = false
            let segments = step.behavior == .mergedWithNext ? Array(s.segments.reversed()) : s.segments
            for (a, b, isMatch) in segments {
                let joins: Bool
                switch step.behavior {
                case .contiguous: joins = isMatch == previousMatch
                default: joins = isMatch && !previousMatch
                }
                if joins, !merged.isEmpty {
                    if step.behavior == .mergedWithNext { merged[merged.count - 1].0 = a } else { merged[merged.count - 1].1 = b }
                } else {
                    merged.append((a, b))
                }
                previousMatch = isMatch
            }
            if step.behavior == .mergedWithNext { merged.reverse() }
            for (a, b) in merged where a < b { out.append((base + a, base + b)) }
            swap(&merged, &s.merged)
        }
    }
}

/// A `Split` pattern given as `{"String": ...}`: its literal occurrences, leftmost and
/// non-overlapping (Hugging Face escapes it into a regex, which finds the same).
struct LiteralPattern: SplitPattern {
    let scalars: [UInt32]

    init(_ literal: String) {
        scalars = literal.unicodeScalars.map(\.value)
    }

    var table: ScalarTable { .category }

    func appendMatches(in text: ScalarView, to out: inout [Int]) {
        let n = text.count, m = scalars.count
        guard m > 0 else { return }
        var i = 0
        while i + m <= n {
            var j = 0
            while j < m && text.scalars[i + j] == scalars[j] { j += 1 }
            if j == m {
                out.append(i)
                out.append(i + m)
                i += m
            } else {
                i += 1
            }
        }
    }
}
