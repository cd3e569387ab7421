/// Unicode general categories as bit positions, so a regex character class over categories is
/// one mask test. The order is fixed here (not Swift's enum order) because masks are built from it.
enum Category {
    static let lu: UInt8 = 0, ll: UInt8 = 1, lt: UInt8 = 2, lm: UInt8 = 3, lo: UInt8 = 4
    static let mn: UInt8 = 5, mc: UInt8 = 6, me: UInt8 = 7
    static let nd: UInt8 = 8, nl: UInt8 = 9, no: UInt8 = 10
    static let pc: UInt8 = 11, pd: UInt8 = 12, ps: UInt8 = 13, pe: UInt8 = 14
    static let pi: UInt8 = 15, pf: UInt8 = 16, po: UInt8 = 17
    static let sm: UInt8 = 18, sc: UInt8 = 19, sk: UInt8 = 20, so: UInt8 = 21
    static let zs: UInt8 = 22, zl: UInt8 = 23, zp: UInt8 = 24
    static let cc: UInt8 = 25, cf: UInt8 = 26, cs: UInt8 = 27, co: UInt8 = 28, cn: UInt8 = 29

    static func mask(_ cats: UInt8...) -> UInt32 { cats.reduce(0) { $0 | (1 << UInt32($1)) } }

    static let letter = mask(lu, ll, lt, lm, lo)
    static let mark = mask(mn, mc, me)
    static let number = mask(nd, nl, no)
    static let punctuation = mask(pc, pd, ps, pe, pi, pf, po)
    static let symbol = mask(sm, sc, sk, so)
    static let separator = mask(zs, zl, zp)
    static let other = mask(cc, cf, cs, co, cn)

    static func index(of c: Unicode.GeneralCategory) -> UInt8 {
        switch c {
        case .uppercaseLetter: return lu
        case .lowercaseLetter: return ll
        case .titlecaseLetter: return lt
        case .modifierLetter: return lm
        case .otherLetter: return lo
        case .nonspacingMark: return mn
        case .spacingMark: return mc
        case .enclosingMark: return me
        case .decimalNumber: return nd
        case .letterNumber: return nl
        case .otherNumber: return no
        case .connectorPunctuation: return pc
        case .dashPunctuation: return pd
        case .openPunctuation: return ps
        case .closePunctuation: return pe
        case .initialPunctuation: return pi
        case .finalPunctuation: return pf
        case .otherPunctuation: return po
        case .mathSymbol: return sm
        case .currencySymbol: return sc
        case .modifierSymbol: return sk
        case .otherSymbol: return so
        case .spaceSeparator: return zs
        case .lineSeparator: return zl
        case .paragraphSeparator: return zp
        case .control: return cc
        case .format: return cf
        case .surrogate: return cs
        case .privateUse: return co
        case .unassigned: return cn
        @unknown default: return cn
        }
    }
}

/// One byte of facts per scalar, looked up in a table for the Basic Multilingual Plane (where
/// nearly all text lives) and computed for the rest. Two layouts exist because the general regex
/// engine needs the exact category while the specialised matchers want ready-made class bits.
enum ScalarTable: Sendable {
    /// Bits 0-4: `Category` index; bit 5: Unicode White_Space (what `\s` means in Oniguruma,
    /// which Hugging Face tokenizers uses; ICU's `\s` differs on U+000B and U+0085).
    case category
    /// `HandClass` bits.
    case hand

    static let whitespaceBit: UInt8 = 0x20
    static let categoryBits: UInt8 = 0x1F

    static func categoryInfo(_ c: UInt32) -> UInt8 {
        guard let s = Unicode.Scalar(c) else { return Category.cs }
        var v = Category.index(of: s.properties.generalCategory)
        if s.properties.isWhitespace { v |= whitespaceBit }
        return v
    }

    static func handClass(_ c: UInt32) -> UInt8 { HandClass.fromInfo(categoryInfo(c)) }

    static let bmp: (category: [UInt8], hand: [UInt8]) = {
        var cat = [UInt8](repeating: 0, count: 0x10000)
        var hand = [UInt8](repeating: 0, count: 0x10000)
        for c in 0..<UInt32(0x10000) {
            let v = categoryInfo(c)
            cat[Int(c)] = v
            hand[Int(c)] = HandClass.fromInfo(v)
        }
        return (cat, hand)
    }()

    func bmpTable() -> [UInt8] {
        switch self {
        case .category: return Self.bmp.category
        case .hand: return Self.bmp.hand
        }
    }

    func compute(_ c: UInt32) -> UInt8 {
        switch self {
        case .category: return Self.categoryInfo(c)
        case .hand: return Self.handClass(c)
        }
    }
}

/// The character classes the Tekken and GPT-2 pre-tokenizer regexes are made of.
enum HandClass {
    static let letter: UInt8 = 1        // \p{L}
    static let number: UInt8 = 2        // \p{N}
    static let upperish: UInt8 = 4      // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
    static let lowerish: UInt8 = 8      // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
    static let space: UInt8 = 16        // \s

    static func fromInfo(_ info: UInt8) -> UInt8 {
        let bit = UInt32(1) << UInt32(info & ScalarTable.categoryBits)
        var k: UInt8 = 0
        if bit & Category.letter != 0 { k |= letter }
        if bit & Category.number != 0 { k |= number }
        if bit & (Category.mask(Category.lu, Category.lt, Category.lm, Category.lo) | Category.mark) != 0 {
            k |= upperish
        }
        if bit & (Category.mask(Category.ll, Category.lm, Category.lo) | Category.mark) != 0 {
            k |= lowerish
        }
        if info & ScalarTable.whitespaceBit != 0 { k |= space }
        return k
    }
}

/// `\w` as Oniguruma and Rust's regex crate define it for Unicode text.
func isWordScalar(_ c: UInt32) -> Bool {
    guard let s = Unicode.Scalar(c) else { return false }
    if c < 0x80 {
        return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F
    }
    let p = s.properties
    if p.isAlphabetic || p.isJoinControl { return true }
    let bit = UInt32(1) << UInt32(Category.index(of: p.generalCategory))
    return bit & (Category.mark | Category.mask(Category.nd, Category.pc)) != 0
}

func isWhitespaceScalar(_ c: UInt32) -> Bool {
    guard let s = Unicode.Scalar(c) else { return false }
    return s.properties.isWhitespace
}
