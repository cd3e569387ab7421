import Foundation
import XCTest

/// A fresh directory under the system temp dir, removed when `test` ends.
public func temporaryDirectory(_ test: XCTestCase, prefix: String = "nemo-tests") -> String {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: base) }
    return base.path
}

/// Sorted names in a directory, hidden ones included (empty if it does not exist).
public func directoryListing(_ dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
}

/// A test case with a scratch directory of its own (`dir`), made before each test and removed
/// after it. Subclasses that override `setUpWithError` call `super` first.
open class ScratchDirectoryTestCase: XCTestCase {
    public var dir = ""

    open override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "nemo-\(type(of: self))-\(getpid())-\(UInt32.random(in: 0..<UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    open override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// A copy of a fixture model in the scratch directory (inputs tests may try to destroy).
    public func copyModel(_ name: String = "nemotron-h-tiny-moe", to sub: String = "m") throws -> String {
        let dst = dir + "/" + sub
        try FileManager.default.createDirectory(atPath: dst, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors", "tokenizer.json"] {
            try FileManager.default.copyItem(atPath: Fixtures.model(name) + "/" + f, toPath: dst + "/" + f)
        }
        return dst
    }

    public func contents(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    /// Names in the scratch directory (or `sub` below it), hidden ones included.
    public func listing(_ sub: String = "") -> [String] { directoryListing(sub.isEmpty ? dir : dir + "/" + sub) }
}
