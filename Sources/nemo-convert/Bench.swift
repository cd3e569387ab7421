import ArgumentParser
import Benchmarks

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput on generated data (results go in docs/BENCHMARKS.md).",
        subcommands: [BenchRead.self, BenchConvert.self, BenchForward.self, BenchCalibrate.self, BenchTokenize.self])
}
