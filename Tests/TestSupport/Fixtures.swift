import Foundation

/// The package's `fixtures/` folder and what is in it, found from this file so tests run from any
/// working directory.
public enum Fixtures {
    /// `<package root>/fixtures`.
    public static let root: String = {
        var u = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { u.deleteLastPathComponent() }   // Tests/TestSupport/Fixtures.swift
        return u.path + "/fixtures"
    }()
    /// The bundled tiny models (fixtures/README.md).
    public static let models = ["nemotron-h-tiny-moe", "nemotron-h-tiny-dense"]
    public static func model(_ name: String) -> String { root + "/" + name }
    public static func text(_ name: String) -> String { root + "/text/" + name }
    public static var tinyMoE: String { model("nemotron-h-tiny-moe") }
    public static var tinyDense: String { model("nemotron-h-tiny-dense") }
}
