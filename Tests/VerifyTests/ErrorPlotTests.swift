import XCTest
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Formats
@testable import Verify

/// `verify --plot`: a well-formed SVG with one bar per layer and one cell per (MoE layer, expert).
final class ErrorPlotTests: XCTestCase {
    /// Layers like the MoE fixture's pattern, with made-up errors; one expert never routed to
    /// and one infinite error, which must still draw.
    func report() -> VerifyReport {
        let pattern: [LayerKind] = "MEMEM*EMEMEM*E".map { LayerKind(rawValue: String($0))! }
        let layers = pattern.enumerated().map { i, k in
            VerifyReport.LayerError(index: i, kind: k, relError: i == 3 ? .infinity : 0.01 * Double(i + 1),
                                    routingAgreement: k == .moe ? 0.9 : nil,
                                    experts: k == .moe ? (0..<16).map { e in
                                        .init(index: e, tokens: e == 5 ? 0 : 100, measuredTokens: e == 5 ? 0 : 100,
                                              relError: e == 5 ? nil : 0.001 * Double(e))
                                    } : [])
        }
        return VerifyReport(original: .init(ppl: 52.6, nllMean: log(52.6)), quantized: .init(ppl: 53.5, nllMean: log(53.5)),
                            kld: ValueSummary(mean: 0.04, median: 0.03, p99: 0.3, max: 1, count: 510), top1Agreement: 0.86,
                            tokensScored: 510, windows: 2, ctx: 256, layers: layers, seconds: 1, tokensPerSecond: 512, peakRSSBytes: 0)
    }

    final class Counter: NSObject, XMLParserDelegate {
        var classes: [String: Int] = [:]
        var root: String?
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            if root == nil { root = name }
            if let c = attributes["class"] { classes[c, default: 0] += 1 }
        }
    }

    func parse(_ svg: String) throws -> Counter {
        let p = XMLParser(data: Data(svg.utf8))
        let c = Counter()
        p.delegate = c
        XCTAssertTrue(p.parse(), "not well-formed XML: \(String(describing: p.parserError))")
        return c
    }

    func testWellFormedWithABarPerLayerAndACellPerExpert() throws {
        let r = report()
        let c = try parse(ErrorPlot.svg(r, title: "int4 <vs> \"original\" & co"))
        XCTAssertEqual(c.root, "svg")
        XCTAssertEqual(c.classes["layer"], 14)
        XCTAssertEqual(c.classes["expert"], 6 * 16, "6 MoE layers × 16 experts")
    }

    func testDenseModelHasNoHeatMap() throws {
        var r = report()
        r.layers = r.layers.map { var l = $0; l.experts = []; return l }
        let c = try parse(ErrorPlot.svg(r, title: "dense"))
        XCTAssertEqual(c.classes["layer"], 14)
        XCTAssertNil(c.classes["expert"])
    }

    func testWriteIsAtomicAndComplete() throws {
        let path = NSTemporaryDirectory() + "nemo-plot-\(getpid()).svg"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ErrorPlot.write(report(), title: "t", to: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.hasSuffix("</svg>\n"))
        XCTAssertEqual(try parse(text).classes["layer"], 14)
        // An unwritable destination fails with an error naming it, leaving nothing behind.
        XCTAssertThrowsError(try ErrorPlot.write(report(), title: "t", to: "/nonexistent-dir/plot.svg")) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent-dir/plot.svg"), "\(e)")
        }
    }

    func testNiceAxisCeiling() {
        XCTAssertEqual(ErrorPlot.niceCeiling(0.13), 0.2, accuracy: 1e-12)
        XCTAssertEqual(ErrorPlot.niceCeiling(0.5), 0.5, accuracy: 1e-12)
        XCTAssertEqual(ErrorPlot.niceCeiling(3e-4), 5e-4, accuracy: 1e-15)
        XCTAssertEqual(ErrorPlot.niceCeiling(0), 1)
    }
}
