import ArgumentParser
import Formats

/// Exit codes scripts can branch on. ArgumentParser already uses 64 for usage errors.
enum Exit {
    /// The input could not be read: missing, corrupt or inconsistent files.
    static let badInput = ExitCode(65)
    /// Writing the output failed (disk full, permissions); no partial output was left.
    static let outputFailed = ExitCode(73)
    /// A verification threshold (--max-kld, --min-top1, --max-ppl-ratio) was not met.
    static let thresholdFailed = ExitCode(3)
}

/// Prints an error the way every subcommand does, then exits with the matching code.
func fail(_ error: Error) -> Never {
    var stderr = StandardError()
    print("error: \(error)", to: &stderr)
    if error is FormatError { Exit.badInput.exitProcess() }
    ExitCode.failure.exitProcess()
}

extension ExitCode {
    func exitProcess() -> Never { NemoConvert.exit(withError: self) }
}
