import ArgumentParser
import Formats
import Quantize
import Tokenizer
import Verify

/// Exit codes scripts can branch on (README, "Commands"). ArgumentParser already uses 64 for usage errors.
enum Exit {
    /// A usage error found after parsing (an output that would overwrite an input, an option the
    /// recipe has no use for): printed without the usage banner, which would not help.
    static let usage = ExitCode(64)
    /// The input could not be read: missing, corrupt or inconsistent files.
    static let badInput = ExitCode(65)
    /// Writing the output failed (disk full, permissions); no partial output was left.
    static let outputFailed = ExitCode(73)
    /// A verification threshold (--max-kld, --min-top1, --max-ppl-ratio) was not met.
    static let thresholdFailed = ExitCode(3)
}

/// A usage error detected once the inputs are known; exits 64 like a parse error.
struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// The exit code for an error: 64 usage, 73 an output could not be written, 65 any input problem
/// (files, recipes, tokenizers, statistics), 1 anything else.
func exitCode(for error: Error) -> ExitCode {
    switch error {
    case is UsageError, is OutputConflict, is SinkMismatch: return Exit.usage
    case FormatError.output: return Exit.outputFailed
    // VerifyError: models that cannot be compared are inconsistent input, like a corrupt file.
    case is FormatError, is RecipeError, is TokenizerError, is VerifyError: return Exit.badInput
    default: return .failure
    }
}

/// Prints an error the way every subcommand does, then exits with the matching code.
func fail(_ error: Error) -> Never {
    var stderr = StandardError()
    print("error: \(error)", to: &stderr)
    exitCode(for: error).exitProcess()
}

extension ExitCode {
    func exitProcess() -> Never { NemoConvert.exit(withError: self) }
}
