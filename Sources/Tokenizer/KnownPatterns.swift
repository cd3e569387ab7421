/// Hand-written matchers for the two pre-tokenizer regexes that matter most, recognised by exact
/// string equality. Each reproduces Oniguruma's backtracking order for its pattern (alternatives
/// tried left to right, greedy quantifiers giving back one scalar at a time), so it returns the
/// very match the general engine returns; tests compare the two on the fixture texts. They exist
/// because a general backtracking engine is several times slower on these hot paths.

/// The Tekken / Nemotron split regex:
/// `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+`
/// `|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*`
/// `|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
struct TekkenPattern: HandWrittenPattern {
    static let source =
        #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    var table: ScalarTable { .hand }

    /// A "\n" can only be inside a match of ` ?[^\s\p{L}\p{N}]+[\r\n/]*`, `\s*[\r\n]+`,
    /// `\s+(?!\S)` or `\s+`; with a letter or digit next, each of those ends right after the
    /// "\n" (the whitespace runs reach `\s*[\r\n]+` first, so `(?!\S)` never looks across), and
    /// the pattern has no lookbehind.
    var cutsAfterNewline: Bool { true }

    @inline(__always)
    private func isCRLF(_ c: UInt32) -> Bool { c == 0x0A || c == 0x0D }

    /// End of the match starting at `p`, or nil. No alternative matches the empty string.
    @inline(__always)
    func match(_ t: ScalarView, at p: Int) -> Int? {
        let s = t.scalars, k = t.classes, n = t.count
        let c0 = s[p], k0 = k[p]
        // [^\r\n\p{L}\p{N}]? is tried consumed first, then skipped.
        let optionalPrefix = !isCRLF(c0) && k0 & (HandClass.letter | HandClass.number) == 0
        if optionalPrefix, let e = upperThenLower(t, from: p + 1) { return e }
        if let e = upperThenLower(t, from: p) { return e }
        if optionalPrefix, let e = upperRun(t, from: p + 1) { return e }
        if let e = upperRun(t, from: p) { return e }
        if k0 & HandClass.number != 0 { return p + 1 }
        if c0 == 0x20, let e = punctuation(t, from: p + 1) { return e }
        if let e = punctuation(t, from: p) { return e }
        guard k0 & HandClass.space != 0 else { return nil }
        var sEnd = p + 1
        while sEnd < n && k[sEnd] & HandClass.space != 0 { sEnd += 1 }
        // \s*[\r\n]+ : \s* gives back until a line break is next; the line-break run then ends
        // at the last one inside the whitespace run.
        var q = sEnd - 1
        while q >= p {
            if isCRLF(s[q]) { return q + 1 }
            q -= 1
        }
        // \s+(?!\S) : all of the run at the end of the text, else all but its last scalar.
        if sEnd == n { return sEnd }
        if sEnd - p >= 2 { return sEnd - 1 }
        return sEnd  // \s+
    }

    /// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+` from `q`.
    @inline(__always)
    private func upperThenLower(_ t: ScalarView, from q: Int) -> Int? {
        let k = t.classes, n = t.count
        var uEnd = q
        while uEnd < n && k[uEnd] & HandClass.upperish != 0 { uEnd += 1 }
        if uEnd < n && k[uEnd] & HandClass.lowerish != 0 {
            var e = uEnd + 1
            while e < n && k[e] & HandClass.lowerish != 0 { e += 1 }
            return e
        }
        // Backtrack the upper run: the lower run then starts at the last scalar of the upper run
        // that is also lower-ish, and cannot extend past it (the next one was not lower-ish).
        var j = uEnd - 1
        while j >= q {
            if k[j] & HandClass.lowerish != 0 { return j + 1 }
            j -= 1
        }
        return nil
    }

    /// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*` from `q`.
    @inline(__always)
    private func upperRun(_ t: ScalarView, from q: Int) -> Int? {
        let k = t.classes, n = t.count
        guard q < n, k[q] & HandClass.upperish != 0 else { return nil }
        var e = q + 1
        while e < n && k[e] & HandClass.upperish != 0 { e += 1 }
        while e < n && k[e] & HandClass.lowerish != 0 { e += 1 }
        return e
    }

    /// `[^\s\p{L}\p{N}]+[\r\n/]*` from `q`.
    @inline(__always)
    private func punctuation(_ t: ScalarView, from q: Int) -> Int? {
        let s = t.scalars, k = t.classes, n = t.count
        let notPunct = HandClass.space | HandClass.letter | HandClass.number
        guard q < n, k[q] & notPunct == 0 else { return nil }
        var e = q + 1
        while e < n && k[e] & notPunct == 0 { e += 1 }
        while e < n && (isCRLF(s[e]) || s[e] == 0x2F) { e += 1 }
        return e
    }
}

/// The GPT-2 regex that the ByteLevel pre-tokenizer applies when `use_regex` is true:
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
struct GPT2Pattern: HandWrittenPattern {
    static let source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    var table: ScalarTable { .hand }

    @inline(__always)
    func match(_ t: ScalarView, at p: Int) -> Int? {
        let s = t.scalars, k = t.classes, n = t.count
        let c0 = s[p]
        if c0 == 0x27, p + 1 < n {
            let c1 = s[p + 1]
            if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 { return p + 2 }  // s t m d
            if p + 2 < n {
                let c2 = s[p + 2]
                if (c1 == 0x72 || c1 == 0x76) && c2 == 0x65 { return p + 3 }  // re ve
                if c1 == 0x6C && c2 == 0x6C { return p + 3 }  // ll
            }
        }
        if let e = optionalSpaceThenRun(t, p, { $0 & HandClass.letter != 0 }) { return e }
        if let e = optionalSpaceThenRun(t, p, { $0 & HandClass.number != 0 }) { return e }
        let notPunct = HandClass.space | HandClass.letter | HandClass.number
        if let e = optionalSpaceThenRun(t, p, { $0 & notPunct == 0 }) { return e }
        guard k[p] & HandClass.space != 0 else { return nil }
        var sEnd = p + 1
        while sEnd < n && k[sEnd] & HandClass.space != 0 { sEnd += 1 }
        if sEnd == n { return sEnd }
        if sEnd - p >= 2 { return sEnd - 1 }
        return sEnd
    }

    /// ` ?X+` for a class X.
    @inline(__always)
    private func optionalSpaceThenRun(_ t: ScalarView, _ p: Int, _ isIn: (UInt8) -> Bool) -> Int? {
        let k = t.classes, n = t.count
        var q = p
        if t.scalars[p] == 0x20 && p + 1 < n && isIn(k[p + 1]) { q = p + 1 }
        guard isIn(k[q]) else { return nil }
        var e = q + 1
        while e < n && isIn(k[e]) { e += 1 }
        return e
    }
}

/// A pattern matched by hand-written code: leftmost-first scanning, as the regex engine does,
/// over a `match(_:at:)` that never matches the empty string.
protocol HandWrittenPattern: SplitPattern {
    func match(_ t: ScalarView, at p: Int) -> Int?
}

extension HandWrittenPattern {
    func appendMatches(in text: ScalarView, to out: inout [Int]) {
        let n = text.count
        var p = 0
        while p < n {
            if let e = match(text, at: p) {
                out.append(p)
                out.append(e)
                p = e
            } else {
                p += 1
            }
        }
    }
}
