import XCTest
@testable import Formats

final class MappedFileTests: XCTestCase {
    /// Regression: `dontNeed` on an in-memory file used MADV_DONTNEED on heap pages, which zero-fills
    /// them — the buffer's own bytes and any neighbour malloc placed on the same pages. A GGUF's
    /// rewritten A_log lives in such a buffer, and converting a GGUF crashed intermittently.
    func testDontNeedLeavesInMemoryBytesIntact() {
        // madvise only acts on a page-aligned start, which malloc gives a small buffer now and
        // then: keep allocating until some buffer starts on a page, as the GGUF's A_log did.
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let contents = (0..<(2 * page)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var kept: [MappedFile] = []
        var checked = 0
        for _ in 0..<20_000 where checked < 8 {
            let f = MappedFile(path: "in-memory", contents: contents)
            kept.append(f)
            guard Int(bitPattern: f.bytes.baseAddress!) % page == 0 else { continue }
            checked += 1
            f.dontNeed(offset: 0, count: contents.count)
            XCTAssertTrue(Array(f.bytes) == contents, "dontNeed changed an in-memory file's bytes")
        }
        XCTAssertGreaterThan(checked, 0, "no page-aligned buffer in 20000 allocations; the test checked nothing")
    }

    func testDontNeedOnMappedFileKeepsItsContents() throws {
        let path = NSTemporaryDirectory() + "mapped-\(getpid()).bin"
        let contents = (0..<(1 << 16)).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        FileManager.default.createFile(atPath: path, contents: Data(contents))
        defer { unlink(path) }
        let f = try MappedFile(path: path)
        f.dontNeed(offset: 0, count: contents.count)
        XCTAssertTrue(Array(f.bytes) == contents)
    }
}
