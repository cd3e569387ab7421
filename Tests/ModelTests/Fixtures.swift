import Foundation
import Formats

/// Package-root-relative fixture paths, so tests run from any working directory.
enum Fixtures {
    static let root: String = {
        var u = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { u.deleteLastPathComponent() }
        return u.path + "/fixtures"
    }()
    static let models = ["nemotron-h-tiny-moe", "nemotron-h-tiny-dense"]
    static func model(_ name: String) -> String { root + "/" + name }
    static func text(_ name: String) -> String { root + "/text/" + name }
}
