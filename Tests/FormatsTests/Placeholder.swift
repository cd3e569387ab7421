import XCTest
@testable import Formats

final class FixtureSmokeTests: XCTestCase {
    func testBindBothFixtures() throws {
        for (name, params) in [("nemotron-h-tiny-moe", 10932976), ("nemotron-h-tiny-dense", 0)] {
            let ck = try Checkpoint(path: fixturesPath + "/" + name)
            let map = try TensorMap(checkpoint: ck)
            let total = map.tensors.reduce(0) { $0 + $1.view.elementCount }
            print(name, ck.config.pattern, total, map.unexpected, ck.config.mamba!.timeStepLimit)
            if params > 0 { XCTAssertEqual(total, params) }
        }
    }
}

let fixturesPath: String = {
    var u = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { u.deleteLastPathComponent() }
    return u.path + "/fixtures"
}()
