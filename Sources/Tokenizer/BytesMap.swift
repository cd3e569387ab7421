/// Open-addressing hash map from byte strings to short `Int32` sequences, keys and values kept in
/// flat arenas. A lookup hashes the caller's bytes in place: the encode loop asks once per
/// pre-token, and building a `[UInt8]` key for a Swift Dictionary each time would allocate.
///
/// The storage is manually managed (the owner calls `deallocate()`): with Swift arrays inside,
/// every lookup through the shared cache paid retain/release traffic that cost more than the
/// lookup itself.
struct BytesMap {
    private struct Entry {
        var hash: UInt64
        var keyStart: Int
        var valueStart: Int
        var keyCount: Int32
        var valueCount: Int32
    }

    private var slots: UnsafeMutablePointer<Int32>  // entry index + 1; 0 is empty
    private var slotCount: Int
    private var entries: UnsafeMutablePointer<Entry>
    private var entryCapacity: Int
    private(set) var count = 0
    private var keyBytes: UnsafeMutablePointer<UInt8>
    private var keyCapacity: Int
    private var keyCount = 0
    private var valueArena: UnsafeMutablePointer<Int32>
    private var valueCapacity: Int
    private var valueCount = 0

    init(capacity: Int = 16) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slotCount = size
        slots = .allocate(capacity: size)
        slots.initialize(repeating: 0, count: size)
        entryCapacity = max(capacity, 8)
        entries = .allocate(capacity: entryCapacity)
        keyCapacity = entryCapacity * 8
        keyBytes = .allocate(capacity: keyCapacity)
        valueCapacity = entryCapacity * 2
        valueArena = .allocate(capacity: valueCapacity)
    }

    func deallocate() {
        slots.deallocate()
        entries.deallocate()
        keyBytes.deallocate()
        valueArena.deallocate()
    }

    /// Bytes held, for callers that bound the map's memory.
    var footprint: Int { keyCapacity + valueCapacity * 4 + entryCapacity * MemoryLayout<Entry>.stride + slotCount * 4 }

    @inline(__always)
    static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(key.count)
        let n = key.count
        guard n > 0, let base = key.baseAddress else { return h }
        let raw = UnsafeRawPointer(base)
        var i = 0
        while i + 8 <= n {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 32
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            tail |= UInt64(key[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
        return h ^ (h >> 29)
    }

    /// Index of the entry for `key`, or nil.
    @inline(__always)
    func find(_ key: UnsafeBufferPointer<UInt8>, hash h: UInt64) -> Int? {
        let mask = slotCount - 1
        var slot = Int(truncatingIfNeeded: h) & mask
        while true {
            let e = Int(slots[slot])
            if e == 0 { return nil }
            let entry = entries[e - 1]
            if entry.hash == h && Int(entry.keyCount) == key.count && Self.equal(keyBytes + entry.keyStart, key) {
                return e - 1
            }
            slot = (slot + 1) & mask
        }
    }

    func find(_ key: UnsafeBufferPointer<UInt8>) -> Int? { find(key, hash: Self.hash(key)) }

    func find(_ key: [UInt8]) -> Int? { key.withUnsafeBufferPointer { find($0) } }

    @inline(__always)
    private static func equal(_ a: UnsafePointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = b.count
        guard n > 0 else { return true }
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b.baseAddress!)
        var i = 0
        while i + 8 <= n {
            if ra.loadUnaligned(fromByteOffset: i, as: UInt64.self) != rb.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i += 8
        }
        while i < n {
            if a[i] != b[i] { return false }
            i += 1
        }
        return true
    }

    func firstValue(_ entry: Int) -> Int32 { valueArena[entries[entry].valueStart] }

    @inline(__always)
    func appendValues(_ entry: Int, to out: inout [Int32]) {
        let e = entries[entry]
        if e.valueCount == 1 {
            out.append(valueArena[e.valueStart])
        } else {
            out.append(contentsOf: UnsafeBufferPointer(start: valueArena + e.valueStart, count: Int(e.valueCount)))
        }
    }

    /// Inserts `key` (which must not be present yet) with `values`.
    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, hash h: UInt64, values: UnsafeBufferPointer<Int32>) {
        if (count + 1) * 2 > slotCount { growSlots() }
        if count == entryCapacity { Self.grow(&entries, &entryCapacity, used: count, atLeast: count + 1) }
        if keyCount + key.count > keyCapacity { Self.grow(&keyBytes, &keyCapacity, used: keyCount, atLeast: keyCount + key.count) }
        if valueCount + values.count > valueCapacity {
            Self.grow(&valueArena, &valueCapacity, used: valueCount, atLeast: valueCount + values.count)
        }
        entries[count] = Entry(hash: h, keyStart: keyCount, valueStart: valueCount,
                               keyCount: Int32(key.count), valueCount: Int32(values.count))
        if let base = key.baseAddress { (keyBytes + keyCount).initialize(from: base, count: key.count) }
        if let base = values.baseAddress { (valueArena + valueCount).initialize(from: base, count: values.count) }
        keyCount += key.count
        valueCount += values.count
        count += 1
        place(count - 1, hash: h)
    }

    mutating func insert(_ key: [UInt8], values: [Int32]) {
        key.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in insert(k, hash: Self.hash(k), values: v) }
        }
    }

    private static func grow<T>(_ p: inout UnsafeMutablePointer<T>, _ capacity: inout Int, used: Int, atLeast: Int) {
        var c = max(capacity * 2, 16)
        while c < atLeast { c *= 2 }
        let q = UnsafeMutablePointer<T>.allocate(capacity: c)
        q.moveInitialize(from: p, count: used)
        p.deallocate()
        p = q
        capacity = c
    }

    private func place(_ index: Int, hash h: UInt64) {
        let mask = slotCount - 1
        var slot = Int(truncatingIfNeeded: h) & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(index + 1)
    }

    private mutating func growSlots() {
        slots.deallocate()
        slotCount *= 2
        slots = .allocate(capacity: slotCount)
        slots.initialize(repeating: 0, count: slotCount)
        for i in 0..<count { place(i, hash: entries[i].hash) }
    }
}
