import ArgumentParser
import Calibrate
import Verify

// The libraries' closed sets of names, parsed by ArgumentParser: `--help` lists the values and a
// bad one is a usage error (exit 64) with the valid ones in the message. The libraries stay free
// of ArgumentParser; the conformances live here, with the CLI.

extension CalibrationMethod: ExpressibleByArgument {}
extension ModelPreset: ExpressibleByArgument {}
extension KVCacheDType: ExpressibleByArgument {}

/// What `convert` writes.
enum OutputFormat: String, CaseIterable, ExpressibleByArgument {
    /// nemo-convert's packed file (docs/FORMAT.md).
    case packed
    /// llama.cpp's GGUF (docs/GGUF.md).
    case gguf
}
