/// One entry of tokenizer.json's `added_tokens`.
struct AddedToken: Sendable {
    var id: Int32
    var content: String
    var special: Bool
    var singleWord: Bool
    var lstrip: Bool
    var rstrip: Bool
    var normalized: Bool
}

/// A piece of input after added-token extraction: either an added token's id, or a byte range
/// of the text still to be pre-tokenized.
enum Piece {
    case token(Int32)
    case text(Int, Int)
}

/// Finds added tokens in raw text before pre-tokenization, as Hugging Face's `AddedVocabulary`
/// does: leftmost-longest matching, then `single_word`, `lstrip` and `rstrip` applied per match.
/// Non-normalized tokens are extracted first from the whole text, normalized ones then from the
/// remaining pieces (with no normalizer the two see the same bytes, but the order still decides
/// which token wins where they overlap).
struct AddedTokenMatcher: Sendable {
    private struct Trie: Sendable {
        /// children[node][byte] → node; terminal[node] = index into `tokens`, or -1.
        var children: [[UInt8: Int32]] = [[:]]
        var terminal: [Int32] = [-1]
        var firstBytes = [Bool](repeating: false, count: 256)
        var isEmpty: Bool { children[0].isEmpty }

        mutating func insert(_ bytes: [UInt8], token: Int32) {
            var node = 0
            for b in bytes {
                if let next = children[node][b] {
                    node = Int(next)
                } else {
                    children.append([:])
                    terminal.append(-1)
                    children[node][b] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            // With duplicate contents the first listed token keeps the match.
            if terminal[node] < 0 { terminal[node] = token }
            firstBytes[Int(bytes[0])] = true
        }

        /// Longest token starting at `i`, as (token index, end).
        func longest(_ text: UnsafeBufferPointer<UInt8>, at i: Int, end: Int) -> (Int, Int)? {
            var node = 0
            var best: (Int, Int)? = nil
            var j = i
            while j < end, let next = children[node][text[j]] {
                node = Int(next)
                j += 1
                if terminal[node] >= 0 { best = (Int(terminal[node]), j) }
            }
            return best
        }
    }

    let tokens: [AddedToken]
    private var raw = Trie()
    private var normalized = Trie()

    init(_ tokens: [AddedToken]) {
        // Hugging Face lists special tokens before the others when it builds its matchers.
        let ordered = tokens.filter(\.special) + tokens.filter { !$0.special }
        self.tokens = ordered
        for (i, t) in ordered.enumerated() where !t.content.isEmpty {
            if t.normalized {
                normalized.insert(Array(t.content.utf8), token: Int32(i))
            } else {
                raw.insert(Array(t.content.utf8), token: Int32(i))
            }
        }
    }

    var isEmpty: Bool { raw.isEmpty && normalized.isEmpty }

    func split(_ text: UnsafeBufferPointer<UInt8>, into out: inout [Piece]) {
        if normalized.isEmpty {
            split(text, 0, text.count, trie: raw, into: &out)
            return
        }
        var first: [Piece] = []
        split(text, 0, text.count, trie: raw, into: &first)
        for p in first {
            if case .text(let lo, let hi) = p {
                split(text, lo, hi, trie: normalized, into: &out)
            } else {
                out.append(p)
            }
        }
    }

    /// Hugging Face's `AddedVocabulary::find_matches` on `text[lo..<hi]`.
    private func split(_ text: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, trie: Trie, into out: inout [Piece]) {
        if trie.isEmpty || lo == hi {
            out.append(.text(lo, hi))
            return
        }
        var startOffset = lo
        var i = lo
        while i < hi {
            guard trie.firstBytes[Int(text[i])], let (index, matchEnd) = trie.longest(text, at: i, end: hi) else {
                i += 1
                continue
            }
            let token = tokens[index]
            var start = i, stop = matchEnd
            i = matchEnd
            if token.singleWord {
                let startOK = start == lo || !isWordScalar(scalar(before: start, in: text, lo: lo))
                let stopOK = stop == hi || !isWordScalar(scalar(at: stop, in: text))
                if !startOK || !stopOK { continue }
            }
            if token.lstrip {
                var s = start
                while s > lo {
                    let p = scalarStart(before: s, in: text, lo: lo)
                    guard isWhitespaceScalar(scalar(at: p, in: text)) else { break }
                    s = p
                }
                start = max(s, startOffset)
            }
            if token.rstrip {
                while stop < hi {
                    let c = scalar(at: stop, in: text)
                    guard isWhitespaceScalar(c) else { break }
                    stop += utf8Length(c)
                }
            }
            if startOffset < start { out.append(.text(startOffset, start)) }
            out.append(.token(token.id))
            startOffset = stop
        }
        if startOffset != hi { out.append(.text(startOffset, hi)) }
    }
}

private func utf8Length(_ c: UInt32) -> Int {
    c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4
}

private func scalarStart(before i: Int, in text: UnsafeBufferPointer<UInt8>, lo: Int) -> Int {
    var p = i - 1
    while p > lo && text[p] & 0xC0 == 0x80 { p -= 1 }
    return p
}

private func scalar(before i: Int, in text: UnsafeBufferPointer<UInt8>, lo: Int) -> UInt32 {
    scalar(at: scalarStart(before: i, in: text, lo: lo), in: text)
}

private func scalar(at i: Int, in text: UnsafeBufferPointer<UInt8>) -> UInt32 {
    let b0 = text[i]
    let n = text.count
    if b0 < 0x80 { return UInt32(b0) }
    if b0 >= 0xF0, i + 3 < n {
        return (UInt32(b0 & 0x07) << 18) | (UInt32(text[i + 1] & 0x3F) << 12)
            | (UInt32(text[i + 2] & 0x3F) << 6) | UInt32(text[i + 3] & 0x3F)
    }
    if b0 >= 0xE0, i + 2 < n {
        return (UInt32(b0 & 0x0F) << 12) | (UInt32(text[i + 1] & 0x3F) << 6) | UInt32(text[i + 2] & 0x3F)
    }
    if b0 >= 0xC0, i + 1 < n { return (UInt32(b0 & 0x1F) << 6) | UInt32(text[i + 1] & 0x3F) }
    return 0xFFFD
}
