import XCTest
import Foundation
import TestSupport

/// What `--help` promises and how bad option values are refused: enum options list their
/// values, the evaluation options perplexity and verify share have one set of limits, and every
/// document the help or the code cites is in the repository.
final class HelpAndUsageTests: ScratchDirectoryTestCase {
    let moe = Fixtures.model("nemotron-h-tiny-moe")
    let text = Fixtures.text("kjv-heldout.txt")
    let packageRoot = URL(fileURLWithPath: Fixtures.root).deletingLastPathComponent().path

    /// Help text with its line wrapping undone.
    func flat(_ s: String) -> String { s.split(whereSeparator: \.isWhitespace).joined(separator: " ") }

    func testEnumOptionsListTheirValuesAndRefuseOthers() throws {
        let help = try CLIRunner.run(["convert", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(flat(help.stdout).contains("(values: rtn, mse, awq, gptq)"), help.stdout)
        var r = try CLIRunner.run(["convert", moe, "-o", dir + "/o.nemo", "--calib", text, "--method", "gptq4"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("The value 'gptq4' is invalid for '--method <method>'. Please provide one of 'rtn', 'mse', 'awq' or 'gptq'."), r.stderr)
        XCTAssertEqual(listing(), [])

        let fp = try CLIRunner.run(["footprint", "--help"])
        XCTAssertTrue(flat(fp.stdout).contains("(values: bf16, f16, fp8, f32; default: bf16)"), fp.stdout)
        XCTAssertTrue(fp.stdout.contains("nemotron-3-nano-30b-a3b"), fp.stdout)
        r = try CLIRunner.run(["footprint", "--preset", "nemotron-h-8b", "--kv-dtype", "int8"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("Please provide one of 'bf16', 'f16', 'fp8' or 'f32'."), r.stderr)
        XCTAssertEqual(try CLIRunner.run(["footprint", "--preset", "nemotron-h-8b", "--kv-dtype", "fp8", "--json"]).status, 0)
    }

    func testPerplexityAndVerifyShareTheirEvaluationLimits() throws {
        let cases: [([String], String)] = [
            (["--ctx", "1"], "Error: --ctx must be at least 2"),
            (["--batch", "0"], "Error: --batch must be at least 1"),
            (["--max-windows", "0"], "Error: --max-windows must be at least 1"),
            (["--threads", "0"], "Error: --threads must be at least 1"),
        ]
        for cmd in [["perplexity", moe], ["verify", moe, moe]] {
            for (args, message) in cases {
                let r = try CLIRunner.run(cmd + ["--text", text] + args)
                XCTAssertEqual(r.status, 64, "\(cmd[0]) \(args)")
                XCTAssertTrue(r.stderr.hasPrefix(message + "\n"), "\(cmd[0]) \(args): \(r.stderr)")
            }
        }
    }

    /// Issue 11 §5: `convert --help` (and every other help text, and the code's comments) point
    /// at files that exist.
    func testEveryCitedDocumentExists() throws {
        let pattern = try NSRegularExpression(pattern: #"docs/[A-Za-z0-9._-]+\.md"#)
        func cited(_ s: String) -> Set<String> {
            Set(pattern.matches(in: s, range: NSRange(s.startIndex..., in: s)).map { String(s[Range($0.range, in: s)!]) })
        }
        var fromHelp = Set<String>()
        for cmd in [["inspect"], ["convert"], ["perplexity"], ["verify"], ["footprint"], ["bench"],
                    ["bench", "read"], ["bench", "convert"], ["bench", "forward"], ["bench", "calibrate"], ["bench", "tokenize"]] {
            let r = try CLIRunner.run(cmd + ["--help"])
            XCTAssertEqual(r.status, 0, cmd.joined(separator: " "))
            // Help text is wrapped at spaces, never inside a path.
            fromHelp.formUnion(cited(r.stdout))
        }
        XCTAssertTrue(fromHelp.isSuperset(of: ["docs/RECIPES.md", "docs/CALIBRATION.md", "docs/BENCHMARKS.md"]), "\(fromHelp)")
        var fromCode = Set<String>()
        let sources = packageRoot + "/Sources"
        let files = FileManager.default.enumerator(atPath: sources)!.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        XCTAssertGreaterThan(files.count, 50)
        for f in files { fromCode.formUnion(cited(try String(contentsOfFile: sources + "/" + f, encoding: .utf8))) }
        XCTAssertTrue(fromCode.contains("docs/nemotron-h.md"))
        for doc in fromHelp.union(fromCode).sorted() {
            XCTAssertTrue(FileManager.default.fileExists(atPath: packageRoot + "/" + doc), "\(doc) is cited but missing")
        }
    }
}
