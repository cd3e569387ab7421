import Foundation
import XCTest
@testable import Formats
import TestSupport

/// Asserts `body` throws a `FormatError` whose description is exactly `message`.
func assertFormatError(_ message: String, file: StaticString = #filePath, line: UInt = #line,
                       _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected the error: \(message)", file: file, line: line)
    } catch let e as FormatError {
        XCTAssertEqual(e.description, message, file: file, line: line)
    } catch {
        XCTFail("expected a FormatError, got \(error)", file: file, line: line)
    }
}

/// Bytes of a safetensors file with a hand-written header, for files our writer refuses to make.
func craftedSafetensors(header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var out = [UInt8](repeating: 0, count: 8)
    withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { for i in 0..<8 { out[i] = $0[i] } }
    return out + h + data
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

func readFile(_ path: String) -> [UInt8] {
    [UInt8](FileManager.default.contents(atPath: path) ?? Data())
}

/// A tensor to write into a test checkpoint.
struct Tensor {
    var name: String
    var dtype: DType
    var shape: [Int]
    var bytes: [UInt8]

    init(_ name: String, _ dtype: DType, _ shape: [Int], _ bytes: [UInt8]) {
        self.name = name; self.dtype = dtype; self.shape = shape; self.bytes = bytes
    }

    init(_ view: TensorView, name: String? = nil) {
        self.init(name ?? view.name, view.dtype, view.shape, Array(view.bytes))
    }

    var declaration: TensorDeclaration { TensorDeclaration(name: name, dtype: dtype, shape: shape) }
}

func writeSafetensors(_ path: String, _ tensors: [Tensor], metadata: [String: String] = [:]) throws {
    try SafetensorsWriter.write(to: path, tensors: tensors.map { ($0.declaration, $0.bytes) }, metadata: metadata)
}

/// Rewrites a fixture into `dir`: `transform` maps each tensor to the tensors to write instead
/// (none drops it); `editConfig` changes config.json. Non-finite config values are written back
/// as Python literals so the copy reads exactly as the original.
func copyFixture(_ fixture: String, to dir: String,
                 editConfig: (inout JSONObject) -> Void = { _ in },
                 transform: (Tensor) -> [Tensor] = { [$0] },
                 extra: [Tensor] = []) throws -> [Tensor] {
    let ck = try Checkpoint(path: fixture)
    var cfg = try JSONParser.parse(readFile(fixture + "/config.json")).objectValue!
    editConfig(&cfg)
    try writeFileAtomically(dir + "/config.json",
                            contents: JSONWriter.bytes(.object(cfg), options: .init(pretty: true, nonFinite: .pythonLiterals)))
    var out: [Tensor] = []
    for n in ck.tensorNames { out += transform(Tensor(ck.view(n)!)) }
    out += extra
    try writeSafetensors(dir + "/model.safetensors", out)
    return out
}

/// Whether `python3 -c "import safetensors, numpy"` works, and why not when it does not.
let pythonSafetensors: (ok: Bool, why: String) = {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", "import safetensors, numpy"]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return (false, "python3 could not be started: \(error)") }
    p.waitUntilExit()
    switch p.terminationStatus {
    case 0: return (true, "")
    case 127: return (false, "python3 is not installed")   // env: command not found
    default: return (false, "python3 cannot import safetensors and numpy (pip install safetensors numpy)")
    }
}()

/// Runs a Python script, returning its standard output; fails the test on a non-zero exit.
func runPython(_ script: String, args: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script] + args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    if p.terminationStatus != 0 {
        XCTFail("python failed: \(String(decoding: e, as: UTF8.self))", file: file, line: line)
    }
    return String(decoding: o, as: UTF8.self)
}
