/// How a benchmark runs `convert … --json` in a child process, so the child's peak RSS is the
/// converter's alone. The CLI supplies it (it launches its own executable); benchmarks never
/// locate or start a binary themselves.
public struct ConvertLauncher: Sendable {
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: [UInt8]
        public var stderr: String
        public init(status: Int32, stdout: [UInt8], stderr: String) {
            self.status = status; self.stdout = stdout; self.stderr = stderr
        }
    }

    /// The launched program, for error messages.
    public let name: String
    /// Runs the program with these arguments (`["convert", …]`) and waits for it.
    public let run: @Sendable (_ arguments: [String]) throws -> Output

    public init(name: String, run: @escaping @Sendable (_ arguments: [String]) throws -> Output) {
        self.name = name; self.run = run
    }
}
