/// The subset of Oniguruma regex syntax that tokenizer.json split patterns use, parsed into a
/// tree for `RegexPattern`. Constructs outside the subset (backreferences, scripts in `\p{..}`,
/// POSIX brackets, class intersections, extended mode...) are refused by name rather than
/// guessed at.

struct RegexSyntaxError: Error, Sendable {
    var message: String
}

/// Binary properties a class can test besides general categories.
struct ScalarProperties: OptionSet, Sendable {
    let rawValue: UInt8
    static let whitespace = ScalarProperties(rawValue: 1)
    static let word = ScalarProperties(rawValue: 2)
    static let alphabetic = ScalarProperties(rawValue: 4)
    static let uppercase = ScalarProperties(rawValue: 8)
    static let lowercase = ScalarProperties(rawValue: 16)
    static let any = ScalarProperties(rawValue: 32)
}

struct CharClass: Sendable {
    var negated = false
    var ranges: [ClosedRange<UInt32>] = []
    /// Bit `Category` index set for each general category in the class.
    var categories: UInt32 = 0
    var properties: ScalarProperties = []
    /// Negated escapes inside brackets (`[^\S\n]`, `[\P{L}x]`) are kept as their own classes.
    var members: [CharClass] = []
    var caseless = false

    /// `info` is the `ScalarTable.category` byte of `c`.
    func contains(_ c: UInt32, info: UInt8) -> Bool {
        var hit = containsExactly(c, info: info)
        if !hit && caseless {
            for v in caseVariants(c) where v != c {
                if containsExactly(v, info: ScalarTable.categoryInfo(v)) { hit = true; break }
            }
        }
        return hit != negated
    }

    private func containsExactly(_ c: UInt32, info: UInt8) -> Bool {
        if categories & (1 << UInt32(info & ScalarTable.categoryBits)) != 0 { return true }
        if !properties.isEmpty {
            if properties.contains(.any) { return true }
            if properties.contains(.whitespace) && info & ScalarTable.whitespaceBit != 0 { return true }
            if properties.contains(.word) && isWordScalar(c) { return true }
            if let s = Unicode.Scalar(c) {
                if properties.contains(.alphabetic) && s.properties.isAlphabetic { return true }
                if properties.contains(.uppercase) && s.properties.isUppercase { return true }
                if properties.contains(.lowercase) && s.properties.isLowercase { return true }
            }
        }
        for r in ranges where r.contains(c) { return true }
        for m in members where m.contains(c, info: info) { return true }
        return false
    }
}

/// Simple case folding: what a scalar compares as under `(?i)`.
func caseFold(_ c: UInt32) -> UInt32 {
    if c < 0x80 { return (c >= 0x41 && c <= 0x5A) ? c + 32 : c }
    guard let s = Unicode.Scalar(c) else { return c }
    let up = Array(s.properties.uppercaseMapping.unicodeScalars)
    let u = up.count == 1 ? up[0] : s
    let low = Array(u.properties.lowercaseMapping.unicodeScalars)
    return low.count == 1 ? low[0].value : u.value
}

private func caseVariants(_ c: UInt32) -> [UInt32] {
    guard let s = Unicode.Scalar(c) else { return [] }
    var out: [UInt32] = []
    for m in [s.properties.lowercaseMapping, s.properties.uppercaseMapping, s.properties.titlecaseMapping] {
        let u = Array(m.unicodeScalars)
        if u.count == 1 { out.append(u[0].value) }
    }
    return out
}

enum Anchor: Sendable {
    case lineStart, lineEnd, textStart, textEnd, textEndBeforeNewline, wordBoundary, notWordBoundary
}

indirect enum RegexNode: Sendable {
    case empty
    case scalar(UInt32)
    /// A literal under `(?i)`, stored case-folded.
    case foldedScalar(UInt32)
    case set(CharClass)
    case concat([RegexNode])
    case alternation([RegexNode])
    case repeated(RegexNode, min: Int, max: Int, greedy: Bool)
    case look(RegexNode, ahead: Bool, negative: Bool)
    case atomic(RegexNode)
    case anchor(Anchor)

    var matchesOneScalar: Bool {
        switch self {
        case .scalar, .foldedScalar, .set: return true
        default: return false
        }
    }
}

struct RegexParser {
    private let p: [UInt32]
    private var i = 0
    private var caseless = false
    private var dotAll = false

    init(_ pattern: String) {
        p = pattern.unicodeScalars.map(\.value)
    }

    static func parse(_ pattern: String) throws(RegexSyntaxError) -> RegexNode {
        var parser = RegexParser(pattern)
        let node = try parser.alternation()
        if parser.i < parser.p.count { throw RegexSyntaxError(message: "unmatched ')'") }
        return node
    }

    private func peek(_ offset: Int = 0) -> UInt32? {
        i + offset < p.count ? p[i + offset] : nil
    }

    private static func ch(_ s: Unicode.Scalar) -> UInt32 { s.value }

    private mutating func alternation() throws(RegexSyntaxError) -> RegexNode {
        var branches = [try concatenation()]
        while peek() == Self.ch("|") {
            i += 1
            branches.append(try concatenation())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func concatenation() throws(RegexSyntaxError) -> RegexNode {
        var items: [RegexNode] = []
        while let c = peek(), c != Self.ch("|"), c != Self.ch(")") {
            if c == Self.ch("("), peek(1) == Self.ch("?"), let h = flagGroupHeader(at: i), p[h.end] == Self.ch(")") {
                // Oniguruma: an isolated option like `a(?i)b|c` covers the rest of the enclosing
                // group, alternatives included, i.e. it means `a(?i:b|c)`.
                i = h.end + 1
                try apply(on: h.on, off: h.off)
                items.append(try alternation())
                break
            }
            let atom = try self.atom()
            items.append(try quantifiers(atom))
        }
        return items.count == 1 ? items[0] : (items.isEmpty ? .empty : .concat(items))
    }

    /// For `(?imx-imx` at `open` followed by ':' or ')', the flag letters and the index of that terminator.
    private func flagGroupHeader(at open: Int) -> (on: [UInt32], off: [UInt32], end: Int)? {
        var j = open + 2
        var on: [UInt32] = [], off: [UInt32] = []
        var negative = false
        while j < p.count {
            let c = p[j]
            if c == Self.ch(":") || c == Self.ch(")") {
                return (on.isEmpty && off.isEmpty) ? nil : (on, off, j)
            }
            if c == Self.ch("-") && !negative { negative = true }
            else if let s = Unicode.Scalar(c), s.properties.isAlphabetic { if negative { off.append(c) } else { on.append(c) } }
            else { return nil }
            j += 1
        }
        return nil
    }

    private mutating func apply(on: [UInt32], off: [UInt32]) throws(RegexSyntaxError) {
        for (flags, value) in [(on, true), (off, false)] {
            for f in flags {
                switch f {
                case Self.ch("i"): caseless = value
                case Self.ch("m"): dotAll = value  // Ruby syntax: (?m) lets '.' match a newline
                case Self.ch("x") where !value: break
                default:
                    throw RegexSyntaxError(message: "unsupported regex option '\(String(Unicode.Scalar(f)!))'")
                }
            }
        }
    }

    private mutating func group() throws(RegexSyntaxError) -> RegexNode {
        let savedCaseless = caseless, savedDotAll = dotAll
        defer { caseless = savedCaseless; dotAll = savedDotAll }
        i += 1  // '('
        var kind: (ahead: Bool, negative: Bool)? = nil
        var atomic = false
        if peek() == Self.ch("?") {
            switch peek(1) {
            case Self.ch(":"): i += 2
            case Self.ch("="): i += 2; kind = (true, false)
            case Self.ch("!"): i += 2; kind = (true, true)
            case Self.ch(">"): i += 2; atomic = true
            case Self.ch("#"):
                while let c = peek(), c != Self.ch(")") { i += 1 }
                guard peek() != nil else { throw RegexSyntaxError(message: "unterminated comment group") }
                i += 1
                return .empty
            case Self.ch("<") where peek(2) == Self.ch("="): i += 3; kind = (false, false)
            case Self.ch("<") where peek(2) == Self.ch("!"): i += 3; kind = (false, true)
            case Self.ch("<"):
                try skipGroupName()
            case Self.ch("P") where peek(2) == Self.ch("<"):
                try skipGroupName()
            default:
                if let h = flagGroupHeader(at: i - 1), p[h.end] == Self.ch(":") {
                    i = h.end + 1
                    try apply(on: h.on, off: h.off)
                } else {
                    let text = String(String.UnicodeScalarView(p[i..<min(i + 3, p.count)].compactMap(Unicode.Scalar.init)))
                    throw RegexSyntaxError(message: "unsupported group syntax '\(text)'")
                }
            }
        }
        let body = try alternation()
        guard peek() == Self.ch(")") else { throw RegexSyntaxError(message: "missing ')'") }
        i += 1
        if let kind { return .look(body, ahead: kind.ahead, negative: kind.negative) }
        return atomic ? .atomic(body) : body
    }

    /// Named captures are plain groups here: captures play no part in splitting.
    private mutating func skipGroupName() throws(RegexSyntaxError) {
        while let c = peek(), c != Self.ch(">") { i += 1 }
        guard peek() != nil else { throw RegexSyntaxError(message: "unterminated group name") }
        i += 1
    }

    private mutating func atom() throws(RegexSyntaxError) -> RegexNode {
        let c = p[i]
        switch c {
        case Self.ch("("): return try group()
        case Self.ch("["): return .set(try bracket())
        case Self.ch("."):
            i += 1
            var cls = CharClass()
            if dotAll { cls.properties = .any } else { cls.negated = true; cls.ranges = [0x0A...0x0A] }
            return .set(cls)
        case Self.ch("^"): i += 1; return .anchor(.lineStart)
        case Self.ch("$"): i += 1; return .anchor(.lineEnd)
        case Self.ch("\\"): return try escape()
        case Self.ch("*"), Self.ch("+"), Self.ch("?"):
            throw RegexSyntaxError(message: "target of repeat operator is not specified")
        case Self.ch("{") where interval() != nil:
            throw RegexSyntaxError(message: "target of repeat operator is not specified")
        default:
            i += 1
            return literal(c)
        }
    }

    private func literal(_ c: UInt32) -> RegexNode {
        caseless ? .foldedScalar(caseFold(c)) : .scalar(c)
    }

    /// `{n}`, `{n,}`, `{n,m}`, `{,m}` at `i`: bounds and length; nil when '{' is a literal.
    private func interval() -> (min: Int, max: Int, length: Int)? {
        var j = i + 1
        func number() -> Int? {
            var v: Int? = nil
            while j < p.count, p[j] >= 0x30, p[j] <= 0x39 {
                v = (v ?? 0) * 10 + Int(p[j] - 0x30)
                if v! > 100_000 { return nil }
                j += 1
            }
            return v
        }
        let lo = number()
        var hi = lo
        if j < p.count && p[j] == Self.ch(",") {
            j += 1
            hi = number() ?? Int.max
            if lo == nil && hi == Int.max { return nil }
        } else if lo == nil {
            return nil
        }
        guard j < p.count, p[j] == Self.ch("}") else { return nil }
        return (lo ?? 0, hi!, j + 1 - i)
    }

    private mutating func quantifiers(_ atom: RegexNode) throws(RegexSyntaxError) -> RegexNode {
        var node = atom
        while let c = peek() {
            let lo: Int, hi: Int
            var isInterval = false
            switch c {
            case Self.ch("*"): (lo, hi) = (0, Int.max); i += 1
            case Self.ch("+"): (lo, hi) = (1, Int.max); i += 1
            case Self.ch("?"): (lo, hi) = (0, 1); i += 1
            case Self.ch("{"):
                guard let r = interval() else { return node }
                guard r.min <= r.max else { throw RegexSyntaxError(message: "upper bound must be greater than lower bound") }
                (lo, hi) = (r.min, r.max)
                i += r.length
                isInterval = true
            default:
                return node
            }
            if case .anchor = node { throw RegexSyntaxError(message: "target of repeat operator is invalid") }
            if peek() == Self.ch("?") {
                i += 1
                node = .repeated(node, min: lo, max: hi, greedy: false)
            } else if peek() == Self.ch("+") && !isInterval {
                // Possessive; in Oniguruma's default syntax `{n,m}+` is instead a repeat of a repeat.
                i += 1
                node = .atomic(.repeated(node, min: lo, max: hi, greedy: true))
            } else {
                node = .repeated(node, min: lo, max: hi, greedy: true)
            }
        }
        return node
    }

    private enum ClassAtom {
        case scalar(UInt32)
        case cls(CharClass)
    }

    private mutating func bracket() throws(RegexSyntaxError) -> CharClass {
        i += 1  // '['
        var cls = CharClass()
        cls.caseless = caseless
        if peek() == Self.ch("^") { cls.negated = true; i += 1 }
        var first = true
        while true {
            guard let c = peek() else { throw RegexSyntaxError(message: "premature end of char-class") }
            if c == Self.ch("]") && !first { i += 1; break }
            first = false
            if c == Self.ch("[") {
                if peek(1) == Self.ch(":") { throw RegexSyntaxError(message: "POSIX bracket expressions ([:name:]) are not supported") }
                throw RegexSyntaxError(message: "nested character classes are not supported")
            }
            if c == Self.ch("&") && peek(1) == Self.ch("&") {
                throw RegexSyntaxError(message: "character class intersection (&&) is not supported")
            }
            let item = try classAtom()
            if case .scalar(let lo) = item, peek() == Self.ch("-"), let next = peek(1), next != Self.ch("]") {
                i += 1
                guard case .scalar(let hi) = try classAtom() else {
                    throw RegexSyntaxError(message: "invalid range in char-class")
                }
                guard lo <= hi else { throw RegexSyntaxError(message: "empty range in char class") }
                cls.ranges.append(lo...hi)
                continue
            }
            switch item {
            case .scalar(let v): cls.ranges.append(v...v)
            case .cls(let m):
                if m.negated || m.caseless != cls.caseless {
                    cls.members.append(m)
                } else {
                    cls.ranges += m.ranges
                    cls.categories |= m.categories
                    cls.properties.formUnion(m.properties)
                    cls.members += m.members
                }
            }
        }
        return cls
    }

    private mutating func classAtom() throws(RegexSyntaxError) -> ClassAtom {
        let c = p[i]
        guard c == Self.ch("\\") else { i += 1; return .scalar(c) }
        guard let e = peek(1) else { throw RegexSyntaxError(message: "end pattern at escape") }
        if e == Self.ch("b") { i += 2; return .scalar(0x08) }
        switch try escapeItem(inClass: true) {
        case .scalar(let v): return .scalar(v)
        case .cls(let m): return .cls(m)
        case .anchor:
            throw RegexSyntaxError(message: "anchor escape '\\\(String(Unicode.Scalar(e)!))' inside a character class")
        }
    }

    private enum EscapeItem {
        case scalar(UInt32)
        case cls(CharClass)
        case anchor(Anchor)
    }

    private mutating func escape() throws(RegexSyntaxError) -> RegexNode {
        switch try escapeItem(inClass: false) {
        case .scalar(let v): return literal(v)
        case .cls(var m): m.caseless = m.caseless || caseless; return .set(m)
        case .anchor(let a): return .anchor(a)
        }
    }

    private mutating func escapeItem(inClass: Bool) throws(RegexSyntaxError) -> EscapeItem {
        i += 1  // '\'
        guard let e = peek() else { throw RegexSyntaxError(message: "end pattern at escape") }
        i += 1
        func cls(_ build: (inout CharClass) -> Void, negated: Bool = false) -> EscapeItem {
            var c = CharClass()
            build(&c)
            c.negated = negated
            return .cls(c)
        }
        let name = String(Unicode.Scalar(e)!)
        switch name {
        case "d", "D": return cls({ $0.categories = Category.mask(Category.nd) }, negated: name == "D")
        case "w", "W": return cls({ $0.properties = .word }, negated: name == "W")
        case "s", "S": return cls({ $0.properties = .whitespace }, negated: name == "S")
        case "h", "H": return cls({ $0.ranges = [0x30...0x39, 0x41...0x46, 0x61...0x66] }, negated: name == "H")
        case "p", "P": return .cls(try property(negated: name == "P"))
        case "b": return .anchor(.wordBoundary)
        case "B": return .anchor(.notWordBoundary)
        case "A": return .anchor(.textStart)
        case "z": return .anchor(.textEnd)
        case "Z": return .anchor(.textEndBeforeNewline)
        case "t": return .scalar(0x09)
        case "n": return .scalar(0x0A)
        case "r": return .scalar(0x0D)
        case "f": return .scalar(0x0C)
        case "v": return .scalar(0x0B)
        case "a": return .scalar(0x07)
        case "e": return .scalar(0x1B)
        case "x":
            if peek() == Self.ch("{") {
                i += 1
                let v = hexDigits(max: 8)
                guard let v, peek() == Self.ch("}") else { throw RegexSyntaxError(message: "invalid code point value in \\x{...}") }
                i += 1
                return try codePoint(v)
            }
            guard let v = hexDigits(max: 2) else { throw RegexSyntaxError(message: "invalid \\x escape") }
            return .scalar(v)
        case "u":
            guard let v = hexDigits(max: 4, exactly: true) else { throw RegexSyntaxError(message: "invalid \\u escape") }
            return try codePoint(v)
        case "0":
            var v: UInt32 = 0
            var k = 0
            while k < 2, let d = peek(), d >= 0x30, d <= 0x37 { v = v * 8 + (d - 0x30); i += 1; k += 1 }
            return .scalar(v)
        default:
            if e >= 0x31 && e <= 0x39 {
                throw RegexSyntaxError(message: "backreferences (\\\(name)) are not supported")
            }
            if let s = Unicode.Scalar(e), s.properties.isAlphabetic || (e >= 0x30 && e <= 0x39) {
                throw RegexSyntaxError(message: "unsupported escape '\\\(name)'")
            }
            return .scalar(e)
        }
    }

    private func codePoint(_ v: UInt32) throws(RegexSyntaxError) -> EscapeItem {
        guard Unicode.Scalar(v) != nil else { throw RegexSyntaxError(message: "invalid code point value \(v)") }
        return .scalar(v)
    }

    private mutating func hexDigits(max: Int, exactly: Bool = false) -> UInt32? {
        var v: UInt32 = 0
        var k = 0
        while k < max, let d = peek() {
            let x: UInt32
            switch d {
            case 0x30...0x39: x = d - 0x30
            case 0x41...0x46: x = d - 0x41 + 10
            case 0x61...0x66: x = d - 0x61 + 10
            default: return (k == 0 || exactly) ? nil : v
            }
            v = v * 16 + x
            i += 1
            k += 1
        }
        return (k == 0 || (exactly && k != max)) ? nil : v
    }

    private mutating func property(negated: Bool) throws(RegexSyntaxError) -> CharClass {
        var name: String
        var negate = negated
        if peek() == Self.ch("{") {
            i += 1
            if peek() == Self.ch("^") { negate.toggle(); i += 1 }
            var scalars = String.UnicodeScalarView()
            while let c = peek(), c != Self.ch("}") { scalars.append(Unicode.Scalar(c)!); i += 1 }
            guard peek() != nil else { throw RegexSyntaxError(message: "invalid character property name {\(String(scalars))") }
            i += 1
            name = String(scalars)
        } else {
            guard let c = peek() else { throw RegexSyntaxError(message: "invalid character property name") }
            i += 1
            name = String(Unicode.Scalar(c)!)
        }
        guard var cls = Self.namedProperty(name) else {
            throw RegexSyntaxError(message: "unsupported Unicode property \\p{\(name)}")
        }
        cls.negated = negate
        return cls
    }

    /// Oniguruma compares property names ignoring case, spaces, hyphens and underscores.
    static func namedProperty(_ raw: String) -> CharClass? {
        let key = String(raw.lowercased().filter { $0 != " " && $0 != "_" && $0 != "-" })
        var c = CharClass()
        let C = Category.self
        let categoryNames: [String: UInt32] = [
            "l": C.letter, "letter": C.letter,
            "lu": C.mask(C.lu), "uppercaseletter": C.mask(C.lu),
            "ll": C.mask(C.ll), "lowercaseletter": C.mask(C.ll),
            "lt": C.mask(C.lt), "titlecaseletter": C.mask(C.lt),
            "lm": C.mask(C.lm), "modifierletter": C.mask(C.lm),
            "lo": C.mask(C.lo), "otherletter": C.mask(C.lo),
            "lc": C.mask(C.lu, C.ll, C.lt), "l&": C.mask(C.lu, C.ll, C.lt), "casedletter": C.mask(C.lu, C.ll, C.lt),
            "m": C.mark, "mark": C.mark, "combiningmark": C.mark,
            "mn": C.mask(C.mn), "nonspacingmark": C.mask(C.mn),
            "mc": C.mask(C.mc), "spacingmark": C.mask(C.mc),
            "me": C.mask(C.me), "enclosingmark": C.mask(C.me),
            "n": C.number, "number": C.number,
            "nd": C.mask(C.nd), "decimalnumber": C.mask(C.nd), "digit": C.mask(C.nd),
            "nl": C.mask(C.nl), "letternumber": C.mask(C.nl),
            "no": C.mask(C.no), "othernumber": C.mask(C.no),
            "p": C.punctuation, "punctuation": C.punctuation,
            "pc": C.mask(C.pc), "connectorpunctuation": C.mask(C.pc),
            "pd": C.mask(C.pd), "dashpunctuation": C.mask(C.pd),
            "ps": C.mask(C.ps), "openpunctuation": C.mask(C.ps),
            "pe": C.mask(C.pe), "closepunctuation": C.mask(C.pe),
            "pi": C.mask(C.pi), "initialpunctuation": C.mask(C.pi),
            "pf": C.mask(C.pf), "finalpunctuation": C.mask(C.pf),
            "po": C.mask(C.po), "otherpunctuation": C.mask(C.po),
            "s": C.symbol, "symbol": C.symbol,
            "sm": C.mask(C.sm), "mathsymbol": C.mask(C.sm),
            "sc": C.mask(C.sc), "currencysymbol": C.mask(C.sc),
            "sk": C.mask(C.sk), "modifiersymbol": C.mask(C.sk),
            "so": C.mask(C.so), "othersymbol": C.mask(C.so),
            "z": C.separator, "separator": C.separator,
            "zs": C.mask(C.zs), "spaceseparator": C.mask(C.zs),
            "zl": C.mask(C.zl), "lineseparator": C.mask(C.zl),
            "zp": C.mask(C.zp), "paragraphseparator": C.mask(C.zp),
            "c": C.other, "other": C.other,
            "cc": C.mask(C.cc), "control": C.mask(C.cc),
            "cf": C.mask(C.cf), "format": C.mask(C.cf),
            "cs": C.mask(C.cs), "surrogate": C.mask(C.cs),
            "co": C.mask(C.co), "privateuse": C.mask(C.co),
            "cn": C.mask(C.cn), "unassigned": C.mask(C.cn),
        ]
        if let m = categoryNames[key] {
            c.categories = m
            return c
        }
        switch key {
        case "alpha", "alphabetic": c.properties = .alphabetic
        case "space", "whitespace": c.properties = .whitespace
        case "upper", "uppercase": c.properties = .uppercase
        case "lower", "lowercase": c.properties = .lowercase
        case "word": c.properties = .word
        case "any": c.properties = .any
        case "alnum": c.properties = .alphabetic; c.categories = C.mask(C.nd)
        case "ascii": c.ranges = [0...0x7F]
        case "xdigit": c.ranges = [0x30...0x39, 0x41...0x46, 0x61...0x66]
        default: return nil
        }
        return c
    }
}
