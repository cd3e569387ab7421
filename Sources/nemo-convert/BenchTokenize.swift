import ArgumentParser
import Benchmarks
import Formats
import Tokenizer

struct BenchTokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenizer encoding throughput in MB/s of UTF-8 text, one thread.",
        discussion: """
        Encodes each TEXT whole, cold (a freshly loaded tokenizer per pass, so every word goes \
        through the BPE merges) and warm (one tokenizer whose word cache answers), in --repeats \
        samples of at least 0.2 s of encoding each, and reports the medians. Loading \
        tokenizer.json is timed apart.
        """)

    @Argument(help: "UTF-8 texts to encode (default: the fixtures' held-out and calibration texts).")
    var texts: [String] = ["fixtures/text/kjv-heldout.txt", "fixtures/text/kjv-calib.txt"]

    @Option(help: "tokenizer.json to load.")
    var tokenizer = "fixtures/nemotron-h-tiny-moe/tokenizer.json"

    @Option(help: "Timed samples per text and mode (each at least 0.2 s of encoding); medians are reported.")
    var repeats = 7

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be positive") }
        guard !texts.isEmpty else { throw ValidationError("give at least one text") }
    }

    func run() throws {
        let bar = ProgressLine(quiet: json)
        let r: TokenizeBenchmark.Result
        do {
            r = try TokenizeBenchmark.run(tokenizer: tokenizer, texts: texts, repeats: repeats) { bar.update($0) }
        } catch { bar.finish(); fail(error) }
        bar.finish()
        if json {
            print(JSONWriter.string(r.json, pretty: true))
            return
        }
        let load = r.loadSeconds.sorted()[r.loadSeconds.count / 2]
        print("tokenizer  \(r.tokenizer) (\(r.vocabSize) ids), loads in \(fmt(load * 1000)) ms")
        for f in r.files {
            print("""
            \(f.path)  \(f.bytes) bytes → \(f.tokens) tokens (\(fmt(Double(f.bytes) / Double(max(1, f.tokens)))) bytes/token)
              cold  \(fmt(f.coldMBps)) MB/s, \(fmt(f.coldCPUMBps)) per CPU-second   (fresh tokenizer each pass; median of \(f.coldSeconds.count) samples)
              warm  \(fmt(f.warmMBps)) MB/s, \(fmt(f.warmCPUMBps)) per CPU-second   (word cache filled; median of \(f.warmSeconds.count) samples)
            """)
        }
    }
}

private func fmt(_ x: Double) -> String { String(format: "%.2f", x) }

import Foundation
