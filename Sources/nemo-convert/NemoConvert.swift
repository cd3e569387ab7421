import ArgumentParser

@main
struct NemoConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nemo-convert",
        abstract: "Convert, quantize and verify NVIDIA Nemotron-H checkpoints.",
        discussion: """
        Reads Hugging Face safetensors checkpoints of the Nemotron-H family (Mamba-2 / attention / \
        mixture-of-experts hybrids), quantizes them to INT8, INT4 or FP8 with per-expert and per-SSM-head \
        scales, packs them into one mmap-able file, and checks what quantization cost in accuracy.
        """,
        version: "0.1.0",
        subcommands: [Inspect.self, ConvertCommand.self, PerplexityCommand.self, VerifyCommand.self, FootprintCommand.self, Bench.self]
    )
}
