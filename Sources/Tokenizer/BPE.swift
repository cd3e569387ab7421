import Foundation

/// Merge ranks keyed by the pair of token ids they join: open addressing on one 64-bit key,
/// because the merge loop asks for every adjacent pair of every new word.
struct PairRanks {
    private var keys: [UInt64]
    private var values: [UInt64]  // rank << 32 | merged id
    private let mask: Int
    private static let empty = UInt64.max

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    private static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    @inline(__always)
    private func slot(_ k: UInt64) -> Int {
        Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> 20) & mask
    }

    /// A later merge of the same pair replaces an earlier one, as building a Rust HashMap from
    /// the merges list does in Hugging Face tokenizers.
    mutating func set(_ a: Int32, _ b: Int32, rank: Int32, id: Int32) {
        let k = Self.key(a, b)
        var s = slot(k)
        while keys[s] != Self.empty && keys[s] != k { s = (s + 1) & mask }
        keys[s] = k
        values[s] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: id))
    }

    @inline(__always)
    func get(_ a: Int32, _ b: Int32) -> (rank: Int32, id: Int32)? {
        let k = Self.key(a, b)
        var s = slot(k)
        return keys.withUnsafeBufferPointer { kp in
            while true {
                let v = kp[s]
                if v == k {
                    let x = values[s]
                    return (Int32(truncatingIfNeeded: x >> 32), Int32(truncatingIfNeeded: x))
                }
                if v == Self.empty { return nil }
                s = (s + 1) & mask
            }
        }
    }
}

/// Buffers of the merge loop, reused across the words of one encode call.
struct MergeScratch {
    var ids: [Int32] = []
    var prev: [Int32] = []
    var next: [Int32] = []
    var alive: [Bool] = []
    /// Min-heap of candidate merges ordered by (rank, position), as in Hugging Face's `Word::merge_all`.
    var heapKeys: [UInt64] = []
    var heapIds: [Int32] = []
    var result: [Int32] = []
    var symbols: [Int32] = []
    var word: [UInt8] = []

    mutating func push(rank: Int32, pos: Int, id: Int32) {
        var i = heapKeys.count
        let key = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(pos)
        heapKeys.append(key)
        heapIds.append(id)
        while i > 0 {
            let parent = (i - 1) >> 1
            if heapKeys[parent] <= key { break }
            heapKeys[i] = heapKeys[parent]
            heapIds[i] = heapIds[parent]
            i = parent
        }
        heapKeys[i] = key
        heapIds[i] = id
    }

    mutating func pop() -> (pos: Int, id: Int32)? {
        guard let topKey = heapKeys.first else { return nil }
        let topId = heapIds[0]
        let lastKey = heapKeys.removeLast()
        let lastId = heapIds.removeLast()
        let n = heapKeys.count
        if n > 0 {
            var i = 0
            while true {
                var child = 2 * i + 1
                if child >= n { break }
                if child + 1 < n && heapKeys[child + 1] < heapKeys[child] { child += 1 }
                if heapKeys[child] >= lastKey { break }
                heapKeys[i] = heapKeys[child]
                heapIds[i] = heapIds[child]
                i = child
            }
            heapKeys[i] = lastKey
            heapIds[i] = lastId
        }
        return (Int(topKey & 0xFFFF_FFFF), topId)
    }
}

/// The BPE model of tokenizer.json: splits a pre-token into initial symbols and applies merges
/// lowest rank first, exactly as Hugging Face tokenizers' `BPE::merge_word` does.
final class BPEModel: @unchecked Sendable {
    let vocab: [String: Int32]
    let merges: PairRanks
    let unknownId: Int32?
    let fuseUnknown: Bool
    let byteFallback: Bool
    let continuingSubwordPrefix: String?
    let endOfWordSuffix: String?
    let ignoreMerges: Bool
    /// Pre-tokens arrive as raw bytes and are spelled through the GPT-2 byte table (a ByteLevel
    /// pre-tokenizer is present); otherwise the symbols are the word's Unicode scalars.
    let byteLevel: Bool

    /// Id of each byte's spelling, per position variant (bit 0: prefixed, bit 1: suffixed); -1 if absent.
    private let unitIds: [Int32]
    /// Whole-word lookup for `ignore_merges`, keyed by the raw bytes a token spells.
    private let wholeWords: BytesMap?

    /// Pre-token → ids. Guarded by `mutex` so one Tokenizer can encode on several threads; behind
    /// a pointer so that the hot path pays no dynamic exclusivity check on a class property.
    private let cache: UnsafeMutablePointer<BytesMap>
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// Words longer than this are not cached (they are rare and would crowd the arenas).
    private static let maxCachedWordBytes = 256
    private static let maxCacheFootprint = 64 << 20

    init(vocab: [String: Int32], merges: PairRanks, unknownId: Int32?, fuseUnknown: Bool,
         byteFallback: Bool, continuingSubwordPrefix: String?, endOfWordSuffix: String?,
         ignoreMerges: Bool, byteLevel: Bool) {
        self.vocab = vocab
        self.merges = merges
        self.unknownId = unknownId
        self.fuseUnknown = fuseUnknown
        self.byteFallback = byteFallback
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.endOfWordSuffix = endOfWordSuffix
        self.ignoreMerges = ignoreMerges
        self.byteLevel = byteLevel
        cache = .allocate(capacity: 1)
        cache.initialize(to: BytesMap(capacity: 4096))
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)

        var units = [Int32](repeating: -1, count: 4 * 256)
        if byteLevel {
            for variant in 0..<4 {
                for b in 0..<256 {
                    let s = Self.decorate(String(Unicode.Scalar(ByteLevel.byteToScalar[b])!), variant: variant,
                                          prefix: continuingSubwordPrefix, suffix: endOfWordSuffix)
                    units[variant * 256 + b] = vocab[s] ?? -1
                }
            }
        }
        unitIds = units

        if ignoreMerges {
            var map = BytesMap(capacity: vocab.count)
            for (token, id) in vocab {
                let raw: [UInt8]? = byteLevel ? ByteLevel.decode(token) : Array(token.utf8)
                if let raw, map.find(raw) == nil { map.insert(raw, values: [id]) }
            }
            wholeWords = map
        } else {
            wholeWords = nil
        }
    }

    deinit {
        cache.pointee.deallocate()
        cache.deinitialize(count: 1)
        cache.deallocate()
        wholeWords?.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    private static func decorate(_ s: String, variant: Int, prefix: String?, suffix: String?) -> String {
        var out = s
        if variant & 1 != 0, let prefix { out = prefix + out }
        if variant & 2 != 0, let suffix { out += suffix }
        return out
    }

    /// Appends the ids of one pre-token.
    func tokenize(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32], scratch: inout MergeScratch) {
        guard !word.isEmpty else { return }
        if let wholeWords, let e = wholeWords.find(word) {
            out.append(wholeWords.firstValue(e))
            return
        }
        let cacheable = word.count <= Self.maxCachedWordBytes
        let h = BytesMap.hash(word)
        if cacheable {
            pthread_mutex_lock(mutex)
            if let e = cache.pointee.find(word, hash: h) {
                cache.pointee.appendValues(e, to: &out)
                pthread_mutex_unlock(mutex)
                return
            }
            pthread_mutex_unlock(mutex)
        }
        initialSymbols(word, into: &scratch)
        mergeAll(&scratch)
        out.append(contentsOf: scratch.result)
        if cacheable {
            pthread_mutex_lock(mutex)
            if cache.pointee.footprint > Self.maxCacheFootprint {
                cache.pointee.deallocate()
                cache.pointee = BytesMap(capacity: 4096)
            }
            if cache.pointee.find(word, hash: h) == nil {
                scratch.result.withUnsafeBufferPointer { cache.pointee.insert(word, hash: h, values: $0) }
            }
            pthread_mutex_unlock(mutex)
        }
    }

    /// Fills `scratch.symbols` with the ids of the word's characters (bytes or scalars), with
    /// Hugging Face's handling of characters missing from the vocabulary: byte fallback if
    /// enabled, else the unknown token (consecutive ones fused if `fuse_unk`), else dropped.
    private func initialSymbols(_ word: UnsafeBufferPointer<UInt8>, into scratch: inout MergeScratch) {
        scratch.symbols.removeAll(keepingCapacity: true)
        var pendingUnknown = false
        let hasPrefix = continuingSubwordPrefix != nil, hasSuffix = endOfWordSuffix != nil

        func known(_ id: Int32, _ symbols: inout [Int32]) {
            if pendingUnknown, let unknownId { symbols.append(unknownId); pendingUnknown = false }
            symbols.append(id)
        }
        func missing(_ spelled: String, _ symbols: inout [Int32]) {
            if byteFallback {
                var ids: [Int32] = []
                for b in spelled.utf8 {
                    guard let id = vocab[Self.byteFallbackToken(b)] else { ids.removeAll(); break }
                    ids.append(id)
                }
                if !ids.isEmpty {
                    // Hugging Face appends these without first flushing a pending unknown.
                    symbols += ids
                    return
                }
            }
            guard let unknownId else { return }
            if pendingUnknown && !fuseUnknown { symbols.append(unknownId) }
            pendingUnknown = true
        }

        if byteLevel {
            let n = word.count
            unitIds.withUnsafeBufferPointer { units in
                for i in 0..<n {
                    let variant = (hasPrefix && i > 0 ? 1 : 0) | (hasSuffix && i == n - 1 ? 2 : 0)
                    let b = Int(word[i])
                    let id = units[variant * 256 + b]
                    if id >= 0 {
                        known(id, &scratch.symbols)
                    } else {
                        let s = Self.decorate(String(Unicode.Scalar(ByteLevel.byteToScalar[b])!), variant: variant,
                                              prefix: continuingSubwordPrefix, suffix: endOfWordSuffix)
                        missing(s, &scratch.symbols)
                    }
                }
            }
        } else {
            let text = String(decoding: word, as: UTF8.self)
            let scalars = Array(text.unicodeScalars)
            for (i, u) in scalars.enumerated() {
                let variant = (hasPrefix && i > 0 ? 1 : 0) | (hasSuffix && i == scalars.count - 1 ? 2 : 0)
                let s = Self.decorate(String(u), variant: variant, prefix: continuingSubwordPrefix, suffix: endOfWordSuffix)
                if let id = vocab[s] { known(id, &scratch.symbols) } else { missing(s, &scratch.symbols) }
            }
        }
        if pendingUnknown, let unknownId { scratch.symbols.append(unknownId) }
    }

    static func byteFallbackToken(_ b: UInt8) -> String {
        let hex = Array("0123456789ABCDEF")
        return "<0x\(hex[Int(b >> 4)])\(hex[Int(b & 15)])>"
    }

    /// Applies merges to `scratch.symbols`, leaving the final ids in `scratch.result`.
    private func mergeAll(_ s: inout MergeScratch) {
        let n = s.symbols.count
        s.result.removeAll(keepingCapacity: true)
        if n < 2 {
            s.result.append(contentsOf: s.symbols)
            return
        }
        s.ids.removeAll(keepingCapacity: true)
        s.ids.append(contentsOf: s.symbols)
        s.prev.removeAll(keepingCapacity: true)
        s.next.removeAll(keepingCapacity: true)
        s.alive.removeAll(keepingCapacity: true)
        for i in 0..<n {
            s.prev.append(Int32(i - 1))
            s.next.append(i + 1 < n ? Int32(i + 1) : -1)
            s.alive.append(true)
        }
        s.heapKeys.removeAll(keepingCapacity: true)
        s.heapIds.removeAll(keepingCapacity: true)
        for i in 0..<(n - 1) {
            if let m = merges.get(s.ids[i], s.ids[i + 1]) { s.push(rank: m.rank, pos: i, id: m.id) }
        }
        while let top = s.pop() {
            let pos = top.pos
            guard s.alive[pos] else { continue }
            let right = Int(s.next[pos])
            guard right >= 0 else { continue }
            // A stale entry: the pair at `pos` changed since it was queued.
            guard let m = merges.get(s.ids[pos], s.ids[right]), m.id == top.id else { continue }
            s.ids[pos] = top.id
            s.alive[right] = false
            let after = Int(s.next[right])
            s.next[pos] = Int32(after)
            if after >= 0 { s.prev[after] = Int32(pos) }
            let before = Int(s.prev[pos])
            if before >= 0, let m = merges.get(s.ids[before], s.ids[pos]) {
                s.push(rank: m.rank, pos: before, id: m.id)
            }
            if after >= 0, let m = merges.get(s.ids[pos], s.ids[after]) {
                s.push(rank: m.rank, pos: pos, id: m.id)
            }
        }
        var i = 0
        while i >= 0 {
            s.result.append(s.ids[i])
            i = Int(s.next[i])
        }
    }
}
