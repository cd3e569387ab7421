/// A backtracking matcher for `RegexNode` trees with Oniguruma's semantics: leftmost match,
/// alternatives in order, greedy/lazy/possessive quantifiers, lookaround, on Unicode scalars.
///
/// This is the general engine for split patterns that `KnownPatterns` does not recognise, and
/// the reference the hand-written matchers are tested against. Our own engine rather than ICU's
/// (NSRegularExpression) because ICU's `\s` is not Unicode White_Space and its offsets are UTF-16.
struct RegexPattern: SplitPattern {
    let source: String
    let root: RegexNode

    init(_ source: String) throws(RegexSyntaxError) {
        self.source = source
        self.root = try RegexParser.parse(source)
    }

    var table: ScalarTable { .category }

    func appendMatches(in text: ScalarView, to out: inout [Int]) {
        let m = Matcher(s: text.scalars, info: text.classes)
        let n = text.count
        // Oniguruma's find_iter: search from the end of the last match; an empty match right where
        // the previous match ended is skipped by moving the search start one scalar on.
        var from = 0
        var lastMatchEnd = -1
        while from <= n {
            var found: (Int, Int)? = nil
            var start = from
            while start <= n {
                if let e = m.matchEnd(root, at: start) { found = (start, e); break }
                start += 1
            }
            guard let (s, e) = found else { break }
            if s == e && e == lastMatchEnd {
                from += 1
                continue
            }
            out.append(s)
            out.append(e)
            from = e
            lastMatchEnd = e
        }
    }

    /// The end of the match of the whole pattern anchored at `start` (for tests).
    func matchEnd(in text: ScalarView, at start: Int) -> Int? {
        Matcher(s: text.scalars, info: text.classes).matchEnd(root, at: start)
    }
}

private struct Matcher {
    let s: UnsafeBufferPointer<UInt32>
    let info: UnsafeBufferPointer<UInt8>
    var n: Int { s.count }

    func matchEnd(_ node: RegexNode, at start: Int) -> Int? {
        var end = -1
        return match(node, start, { e in end = e; return true }) ? end : nil
    }

    @inline(__always)
    private func one(_ node: RegexNode, _ i: Int) -> Bool {
        guard i < n else { return false }
        switch node {
        case .scalar(let c): return s[i] == c
        case .foldedScalar(let c): return caseFold(s[i]) == c
        case .set(let cls): return cls.contains(s[i], info: info[i])
        default: return false
        }
    }

    private func isWord(_ i: Int) -> Bool { i >= 0 && i < n && isWordScalar(s[i]) }

    private func holds(_ a: Anchor, _ i: Int) -> Bool {
        switch a {
        case .lineStart: return i == 0 || s[i - 1] == 0x0A
        case .lineEnd: return i == n || s[i] == 0x0A
        case .textStart: return i == 0
        case .textEnd: return i == n
        case .textEndBeforeNewline: return i == n || (i == n - 1 && s[i] == 0x0A)
        case .wordBoundary: return isWord(i - 1) != isWord(i)
        case .notWordBoundary: return isWord(i - 1) == isWord(i)
        }
    }

    /// Whether `node` matches at `i` in a way that lets the continuation `k` succeed from where it
    /// ends; ways are tried in Oniguruma's priority order, so the first success is its match.
    func match(_ node: RegexNode, _ i: Int, _ k: (Int) -> Bool) -> Bool {
        switch node {
        case .empty:
            return k(i)
        case .scalar, .foldedScalar, .set:
            return one(node, i) && k(i + 1)
        case .concat(let nodes):
            return sequence(nodes, 0, i, k)
        case .alternation(let nodes):
            for nd in nodes where match(nd, i, k) { return true }
            return false
        case .repeated(let body, let lo, let hi, let greedy):
            if body.matchesOneScalar {
                // Iterative: a long run of spaces or letters must not cost one stack frame each.
                var count = 0
                while count < hi && one(body, i + count) { count += 1 }
                if count < lo { return false }
                if greedy {
                    var c = count
                    while c >= lo {
                        if k(i + c) { return true }
                        c -= 1
                    }
                } else {
                    for c in lo...count where k(i + c) { return true }
                }
                return false
            }
            return repeatGeneral(body, lo, hi, greedy, 0, i, k)
        case .look(let body, let ahead, let negative):
            let found: Bool
            if ahead {
                found = match(body, i, { _ in true })
            } else {
                var st = i
                var hit = false
                while st >= 0 && !hit {
                    hit = match(body, st, { $0 == i })
                    st -= 1
                }
                found = hit
            }
            return found != negative && k(i)
        case .atomic(let body):
            var end = -1
            guard match(body, i, { e in end = e; return true }) else { return false }
            return k(end)
        case .anchor(let a):
            return holds(a, i) && k(i)
        }
    }

    private func sequence(_ nodes: [RegexNode], _ idx: Int, _ i: Int, _ k: (Int) -> Bool) -> Bool {
        if idx == nodes.count { return k(i) }
        return match(nodes[idx], i) { j in sequence(nodes, idx + 1, j, k) }
    }

    /// A quantified group. An iteration that consumes nothing ends the loop (Oniguruma's empty-loop
    /// check), which also keeps `(a*)*` from looping forever.
    private func repeatGeneral(_ body: RegexNode, _ lo: Int, _ hi: Int, _ greedy: Bool,
                               _ count: Int, _ i: Int, _ k: (Int) -> Bool) -> Bool {
        func more() -> Bool {
            count < hi && match(body, i) { j in
                j == i ? k(j) : repeatGeneral(body, lo, hi, greedy, count + 1, j, k)
            }
        }
        if greedy {
            if more() { return true }
            return count >= lo && k(i)
        }
        if count >= lo && k(i) { return true }
        return more()
    }
}
