import ArgumentParser
import Calibrate
import Verify
import Formats

// The libraries' closed sets of names, parsed by ArgumentParser: `--help` lists the values and a
// bad one is a usage error (exit 64) with the valid ones in the message. The libraries stay free
// of ArgumentParser; the conformances live here, with the CLI.

extension CalibrationMethod: ExpressibleByArgument {}
extension ModelPreset: ExpressibleByArgument {}
extension KVCacheDType: ExpressibleByArgument {}
extension OutputFormat: ExpressibleByArgument {}
