import Foundation
import XCTest
import Quantize
@testable import Benchmarks
import TestSupport

/// Prints codec throughput; runs only when QUANTIZE_BENCH is set (timings are never asserted):
/// `QUANTIZE_BENCH=1 swift test --scratch-path .build-q -c release --filter CodecBenchTests`
final class CodecBenchTests: XCTestCase {
    func testPrintThroughput() throws {
        guard let value = ProcessInfo.processInfo.environment["QUANTIZE_BENCH"] else {
            throw XCTSkip("set QUANTIZE_BENCH=1 (or ROWSxCOLS) to run")
        }
        let dims = value.split(separator: "x").compactMap { Int($0) }
        let (rows, cols) = dims.count == 2 ? (dims[0], dims[1]) : (4096, 4096)
        let results = CodecBench.run(rows: rows, cols: cols, repeats: 7)
        print("codec throughput, 1 thread, [\(rows), \(cols)] Float32, GB/s (median of 7):")
        for scheme in CodecBench.defaultSchemes {
            let k = scheme.description
            print(String(format: "  %-16@ encode %6.2f  decode %6.2f  fakequant %6.2f", k as NSString,
                         results["\(k).encode"]!, results["\(k).decode"]!, results["\(k).fakequant"]!))
        }
        let deq = CodecBench.dequantize(rows: rows, cols: cols, repeats: 7)
        print("ggml dequantization (GGUF input types), 1 thread, GB/s of Float32 output (median of 7):")
        for t in CodecBench.decodeOnlyTypes where deq[t.name] != nil {
            print(String(format: "  %-16@ decode %6.2f", t.name as NSString, deq[t.name]!))
        }
    }
}
