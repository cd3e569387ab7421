import Foundation

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

    /// The engine recurses once per nested step, so it runs on a thread of its own with this much
    /// stack (reserved address space; only the pages a match touches are used), whatever thread
    /// the caller is on.
    static let stackBytes = 256 << 20

    func appendMatches(in text: ScalarView, to out: inout [Int]) throws(PatternLimitError) {
        // The caller waits on the semaphore, so the box is never touched by two threads at once.
        final class Box: @unchecked Sendable { var result: Result<[Int], PatternLimitError> = .success([]) }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            var found: [Int] = []
            do throws(PatternLimitError) { try self.search(in: text, to: &found); box.result = .success(found) } catch {
                box.result = .failure(error)
            }
            done.signal()
        }
        thread.stackSize = Self.stackBytes
        thread.start()
        done.wait()
        out += try box.result.get()
    }

    private func search(in text: ScalarView, to out: inout [Int]) throws(PatternLimitError) {
        // 8 MB of the thread's stack are kept for what runs around the match.
        let m = Matcher(s: text.scalars, info: text.classes, budget: StepBudget(stackBytes: Self.stackBytes - (8 << 20)))
        let n = text.count
        // Oniguruma's find_iter: search from the end of the last match; an empty match right where
        // the previous match ended is skipped by moving the search start one scalar on.
        var from = 0
        var lastMatchEnd = -1
        while from <= n {
            var found: (Int, Int)? = nil
            var start = from
            while start <= n {
                m.budget.reset()
                if let e = m.matchEnd(root, at: start) { found = (start, e); break }
                if let reason = m.budget.exceeded { throw PatternLimitError(pattern: source, offset: start, reason: reason) }
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
    func matchEnd(in text: ScalarView, at start: Int) throws(PatternLimitError) -> Int? {
        let m = Matcher(s: text.scalars, info: text.classes, budget: StepBudget(stackBytes: 2 << 20))
        let e = m.matchEnd(root, at: start)
        if let reason = m.budget.exceeded { throw PatternLimitError(pattern: source, offset: start, reason: reason) }
        return e
    }
}

/// A split pattern that could not be matched within the engine's limits (see `StepBudget`).
struct PatternLimitError: Error, Sendable {
    let pattern: String
    /// Scalar offset, within the piece of text being split, where the failing match attempt started.
    let offset: Int
    let reason: String
}

/// Bounds one match attempt of the backtracking engine.
///
/// Patterns such as `(a|a)*b` or `(a+)+$` backtrack exponentially, and a tokenizer.json ships with
/// every downloaded checkpoint, so a hostile or careless one must fail fast instead of hanging.
/// Oniguruma, the engine Hugging Face tokenizers use, bounds a match attempt the same way (its
/// retry limit in match defaults to 10,000,000). The engine also recurses once per nested step,
/// so each step checks how deep into the stack it is: inputs like `(?:ab)+` over megabytes then
/// fail instead of crashing, whatever a frame costs (about 0.9 KB in release builds, several
/// times that under AddressSanitizer).
final class StepBudget {
    static let steps = 10_000_000
    private(set) var left = StepBudget.steps
    /// The lowest stack address a step may run at: `stackBytes` below where the budget was made.
    private let floor: UInt
    let stackBytes: Int
    private(set) var exceeded: String?

    /// Made on the thread that matches, at the top of its stack.
    init(stackBytes: Int) {
        self.stackBytes = stackBytes
        var here: UInt8 = 0
        floor = withUnsafeMutablePointer(to: &here) { UInt(bitPattern: $0) } &- UInt(stackBytes)
    }

    func reset() { left = Self.steps }

    /// Counts one step taken with its frame at `stackAddress`; false once the budget is spent or
    /// the stack is (then every later step fails too, so the matcher unwinds without a match).
    @inline(__always)
    func step(at stackAddress: UInt) -> Bool {
        left -= 1
        if left >= 0 && stackAddress > floor { return true }
        if exceeded == nil {
            exceeded = left < 0
                ? "more than \(Self.steps) backtracking steps in one match attempt (catastrophic backtracking)"
                : "recursion deeper than \(stackBytes >> 20) MB of stack in one match attempt"
        }
        left = -1
        return false
    }
}

private struct Matcher {
    let s: UnsafeBufferPointer<UInt32>
    let info: UnsafeBufferPointer<UInt8>
    let budget: StepBudget
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
        var frame: UInt8 = 0
        guard budget.step(at: withUnsafeMutablePointer(to: &frame) { UInt(bitPattern: $0) }) else { return false }
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
