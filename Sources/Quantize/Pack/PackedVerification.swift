import Foundation
import Formats

/// `inspect --verify` on a packed file: every section of every tensor and blob is read in full and
/// checked against its xxHash64, compressed sections are decompressed, and each tensor's sections
/// are checked against what its segments' codecs declare (sizes of codes, scales, zero points,
/// global scales).
///
/// Unlike `PackedFile.verify()`, which stops at the first bad checksum, this checks everything
/// and reports per tensor, so one run tells which tensors a damaged file lost.
public struct PackedVerification: Sendable {
    public struct Item: Sendable {
        /// Tensor name, or `blob NAME` for a stored file.
        public var name: String
        public var sections: Int
        /// Stored bytes read and hashed.
        public var bytes: Int
        /// The first thing wrong with this tensor, naming the tensor and section.
        public var failure: FormatError?
    }

    public var path: String
    /// Tensors in file order, then blobs.
    public var items: [Item]
    public var seconds: Double

    public var failures: [Item] { items.filter { $0.failure != nil } }
    public var ok: Bool { items.allSatisfy { $0.failure == nil } }
    /// The failure of the first damaged tensor in file order.
    public var firstFailure: FormatError? { items.lazy.compactMap(\.failure).first }
    public var bytesChecked: Int { items.reduce(0) { $0 + $1.bytes } }

    /// Checks `file` on `threads` threads (tensors are independent). Pages are dropped from the
    /// resident set after each tensor, so memory stays flat on a file larger than RAM.
    public static func run(_ file: PackedFile, threads: Int = 1) -> PackedVerification {
        let start = Date()
        let n = file.tensors.count
        let out = UnsafeMutablePointer<Item>.allocate(capacity: max(1, n))
        defer { out.deinitialize(count: n); out.deallocate() }
        let parts = max(1, min(threads, n))
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            var i = p
            while i < n {
                (out + i).initialize(to: check(file.tensors[i], in: file))
                i += parts
            }
        }
        var items = Array(UnsafeBufferPointer(start: out, count: n))
        for (name, s) in file.blobs.sorted(by: { $0.key < $1.key }) {
            var item = Item(name: "blob \(name)", sections: 1, bytes: s.length, failure: nil)
            do { try checkSection(s, owner: "blob \(name)", in: file) } catch { item.failure = error }
            items.append(item)
        }
        return PackedVerification(path: file.path, items: items, seconds: Date().timeIntervalSince(start))
    }

    static func check(_ t: PackedTensor, in file: PackedFile) -> Item {
        var item = Item(name: t.name, sections: t.sections.count, bytes: t.sections.values.reduce(0) { $0 + $1.length })
        do {
            let plan: TensorPlan
            do { plan = try TensorPlan(packed: t, file: file.path) } catch let e as FormatError { throw e } catch {
                throw FormatError.invalidTensor(file: file.path, tensor: t.name, message: "\(error)")
            }
            // Sections in the order a reader meets them: per segment, as its codec declares them.
            var order: [String] = []
            for seg in plan.segments {
                for spec in seg.sections(cols: plan.cols) {
                    let (name, bytes) = (spec.name, spec.bytes)
                    guard let s = t.sections[name] else {
                        throw FormatError.invalidTensor(file: file.path, tensor: "\(t.name) (\(name))",
                                                        message: "missing: scheme \(seg.scheme) needs it")
                    }
                    guard s.rawLength == bytes else {
                        throw FormatError.invalidTensor(file: file.path, tensor: "\(t.name) (\(name))",
                                                        message: "holds \(s.rawLength) bytes, scheme \(seg.scheme) on \(seg.rows.count) × \(plan.cols) needs \(bytes) (\(spec.count) \(spec.element.rawValue))")
                    }
                    order.append(name)
                }
            }
            order += t.sections.keys.filter { !order.contains($0) }.sorted()
            for name in order { try checkSection(t.sections[name]!, owner: "\(t.name) (\(name))", in: file) }
        } catch {
            item.failure = error as? FormatError
                ?? FormatError.invalidTensor(file: file.path, tensor: t.name, message: "\(error)")
        }
        return item
    }

    static func checkSection(_ s: PackedSection, owner: String, in file: PackedFile) throws(FormatError) {
        file.file.willNeed(offset: s.offset, count: s.length)
        defer { file.file.dontNeed(offset: s.offset, count: s.length) }
        if s.encoding == .raw {
            _ = try file.stored(s, owner: owner)
            return
        }
        // Compressed: the checksum covers the stored bytes; decoding proves they still expand to
        // what the header says.
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, s.rawLength), alignment: 64)
        defer { buf.deallocate() }
        try file.read(s, owner: owner, into: UnsafeMutableRawBufferPointer(rebasing: buf[0..<s.rawLength]))
    }

    public var json: JSONValue {
        var o: JSONObject = ["path": .string(path), "ok": .bool(ok), "checked": .int(items.count),
                             "failed": .int(failures.count), "bytes_checked": .int(bytesChecked),
                             "seconds": .number(roundDigits(seconds, 3))]
        o["first_failure"] = firstFailure.map { .string($0.description) } ?? .null
        o["tensors"] = .array(items.map { i in
            var j: JSONObject = ["name": .string(i.name), "sections": .int(i.sections), "bytes": .int(i.bytes),
                                 "ok": .bool(i.failure == nil)]
            if let f = i.failure { j["error"] = .string(f.description) }
            return .object(j)
        })
        return .object(o)
    }
}
