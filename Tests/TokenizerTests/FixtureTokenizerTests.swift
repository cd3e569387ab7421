import XCTest
import Formats
@testable import Tokenizer
import TestSupport

/// The fixture tokenizer against ids recorded from Hugging Face tokenizers
/// (fixtures/text/tokenizer-cases.json).
final class FixtureTokenizerTests: XCTestCase {
    let cases = fixtureJSON("text/tokenizer-cases.json")

    func testEveryRecordedCase() throws {
        let list = try XCTUnwrap(cases["cases"]?.arrayValue)
        XCTAssertEqual(list.count, 20)
        for c in list {
            let text = try XCTUnwrap(c["text"]?.stringValue)
            let expected = try XCTUnwrap(c["ids"]?.arrayValue).map { Int32($0.intValue!) }
            let got = try fixtureTokenizer.encode(text)
            XCTAssertEqual(got, expected, "ids of \(text.debugDescription)")
            XCTAssertEqual(fixtureTokenizer.decode(got), text, "round trip of \(text.debugDescription)")
        }
    }

    func testWholeFile() throws {
        let files = try XCTUnwrap(cases["files"]?.arrayValue)
        XCTAssertFalse(files.isEmpty)
        for f in files {
            let name = try XCTUnwrap(f["file"]?.stringValue)
            let text = fixtureText("text/" + name)
            let ids = try fixtureTokenizer.encode(text)
            XCTAssertEqual(ids.count, f["tokens"]?.intValue, name)
            let first = try XCTUnwrap(f["first_32"]?.arrayValue).map { Int32($0.intValue!) }
            let last = try XCTUnwrap(f["last_32"]?.arrayValue).map { Int32($0.intValue!) }
            XCTAssertEqual(Array(ids.prefix(32)), first, name)
            XCTAssertEqual(Array(ids.suffix(32)), last, name)
            // The key says how the digest is defined: the ids as little-endian uint32.
            var bytes: [UInt8] = []
            bytes.reserveCapacity(ids.count * 4)
            for id in ids { withUnsafeBytes(of: UInt32(bitPattern: id).littleEndian) { bytes += $0 } }
            XCTAssertEqual(SHA256.hex(bytes), f["sha256_of_ids_le_u32"]?.stringValue, name)
            XCTAssertEqual(fixtureTokenizer.decode(ids), text, "round trip of \(name)")
        }
    }

    func testCalibrationTextRoundTrips() throws {
        let text = fixtureText("text/kjv-calib.txt")
        let ids = try fixtureTokenizer.encode(text)
        XCTAssertGreaterThan(ids.count, 10_000)
        XCTAssertEqual(fixtureTokenizer.decode(ids), text)
    }

    func testBothFixtureModelsShareTheTokenizer() throws {
        let moe = try Tokenizer(contentsOf: Fixtures.root + "/nemotron-h-tiny-moe/tokenizer.json")
        let text = "In the beginning God created the heaven and the earth."
        XCTAssertEqual(try moe.encode(text), try fixtureTokenizer.encode(text))
    }

    func testVocabularyAndSpecialTokens() throws {
        let t = fixtureTokenizer
        XCTAssertEqual(t.vocabSize, 4096)
        XCTAssertEqual(t.id(of: "<s>"), 1)
        XCTAssertEqual(t.id(of: "</s>"), 2)
        XCTAssertEqual(t.id(of: "\u{120}the"), 262)
        XCTAssertEqual(t.token(for: 262), "\u{120}the")
        XCTAssertNil(t.id(of: "no such token"))
        XCTAssertNil(t.token(for: 4096))
        // tokenizer_config.json beside tokenizer.json names them.
        XCTAssertEqual(t.bosTokenId, 1)
        XCTAssertEqual(t.eosTokenId, 2)
        XCTAssertTrue(t.isSpecial(0))
        XCTAssertFalse(t.isSpecial(262))
    }

    func testSpecialTokensInTextAndDecodeSkipping() throws {
        let t = fixtureTokenizer
        let ids = try t.encode("<s>literal special</s>")
        XCTAssertEqual(ids.first, 1)
        XCTAssertEqual(ids.last, 2)
        XCTAssertEqual(t.decode(ids, skipSpecialTokens: true), "literal special")
        XCTAssertEqual(t.decode(ids), "<s>literal special</s>")
        // Ids outside the vocabulary are skipped, as Hugging Face does.
        XCTAssertEqual(t.decode([751, 9999, -1, 281, 81, 1197]), "Hello world")
    }

    func testNoPostProcessorAddsNothing() throws {
        // This tokenizer.json has post_processor null, so (as in Hugging Face) addSpecialTokens
        // has nothing to add; BOS is the caller's business via bosTokenId.
        XCTAssertEqual(try fixtureTokenizer.encode("Hello world", addSpecialTokens: true), [751, 281, 81, 1197])
    }

    func testDecodeOfCutCharacterIsReplacementCharacter() throws {
        let t = fixtureTokenizer
        let ids = try t.encode("日")
        XCTAssertEqual(ids.count, 3)
        XCTAssertEqual(t.decode(Array(ids.prefix(2))), "\u{FFFD}")
        XCTAssertEqual(t.decode(ids), "日")
    }

    func testConcurrentEncodingAgrees() throws {
        let text = fixtureText("text/kjv-calib.txt")
        let expected = try fixtureTokenizer.encode(text)
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var ok = [Bool](repeating: false, count: 4)
        }
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            let t = try! Tokenizer(contentsOf: fixtureTokenizerPath)
            let shared = try! fixtureTokenizer.encode(text) == expected
            let fresh = try! t.encode(text) == expected
            results.lock.lock()
            results.ok[i] = shared && fresh
            results.lock.unlock()
        }
        XCTAssertEqual(results.ok, [true, true, true, true])
    }

    /// Not a test of speed (no timing assertions): prints encode throughput so a release run
    /// (`swift test -c release --filter TokenizerTests.FixtureTokenizerTests/testReportEncodeThroughput`)
    /// shows it.
    func testReportEncodeThroughput() throws {
        let text = fixtureText("text/kjv-heldout.txt")
        let bytes = Double(text.utf8.count)
        let cold = try! Tokenizer(contentsOf: fixtureTokenizerPath)
        var start = DispatchTime.now().uptimeNanoseconds
        let ids = try cold.encode(text)
        let coldSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        var rounds = 0
        start = DispatchTime.now().uptimeNanoseconds
        var elapsed = 0.0
        while elapsed < 1.0 || rounds < 3 {
            XCTAssertEqual(try cold.encode(text).count, ids.count)
            rounds += 1
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        print(String(format: "encode kjv-heldout.txt (%.0f KB, %d tokens): cold cache %.1f MB/s, warm cache %.1f MB/s",
                     bytes / 1000, ids.count, bytes / coldSeconds / 1e6, bytes * Double(rounds) / elapsed / 1e6))
        start = DispatchTime.now().uptimeNanoseconds
        let decoded = cold.decode(ids)
        let decodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print(String(format: "decode: %.1f MB/s", Double(decoded.utf8.count) / decodeSeconds / 1e6))
    }
}
