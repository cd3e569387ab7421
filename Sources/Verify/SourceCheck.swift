import Foundation
import Formats

/// Whether an original checkpoint is the one a packed file was converted from: `convert` records
/// each source tensor's xxHash64 (`source_xxh64`), and the original's tensors are hashed again.
/// Without this, verifying against another checkpoint of the same architecture reports a KL
/// divergence that blames quantization for the difference between two models.
public enum SourceCheck {
    public struct Result: Sendable, Equatable {
        /// Tensors whose hashes were compared.
        public var compared: Int
        /// Tensors whose data differ (or that the original lacks), in the packed file's order.
        public var differing: [String]
        public var matches: Bool { differing.isEmpty }
    }

    /// Compares `packed`'s recorded source hashes with `original`'s data; nil when the packed file
    /// records none (written before hashes were recorded), so nothing can be said.
    public static func compare(packed: PackedFile, original: TensorMap) -> Result? {
        let recorded = packed.tensors.compactMap { t -> (String, String)? in
            guard case let .string(h)? = t.attributes["source_xxh64"] else { return nil }
            return (t.name, h)
        }
        guard !recorded.isEmpty else { return nil }
        let byName = Dictionary(original.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let same = UnsafeMutableBufferPointer<Bool>.allocate(capacity: recorded.count)
        defer { same.deallocate() }
        same.initialize(repeating: false)
        // Tensors are independent: hash them on every core (the data is read once either way).
        DispatchQueue.concurrentPerform(iterations: recorded.count) { i in
            guard let t = byName[recorded[i].0] else { return }
            same[i] = XXH64.hex(t.data.contentHash()) == recorded[i].1
            t.data.dontNeed()
        }
        let differing = recorded.indices.filter { !same[$0] }.map { recorded[$0].0 }
        return Result(compared: recorded.count, differing: differing)
    }
}
