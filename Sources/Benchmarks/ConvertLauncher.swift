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

/// A peer quantizer timed beside `convert` (llama-quantize): the CLI supplies how to start it, as
/// it does for the converter.
public struct PeerQuantizer: Sendable {
    /// One finished run of the peer: wall and CPU seconds and the child's own peak RSS.
    public struct Output: Sendable {
        public var status: Int32
        public var stderr: String
        public var wallSeconds: Double
        public var cpuSeconds: Double
        public var peakRSSBytes: Int
        public init(status: Int32, stderr: String, wallSeconds: Double, cpuSeconds: Double, peakRSSBytes: Int) {
            self.status = status; self.stderr = stderr; self.wallSeconds = wallSeconds
            self.cpuSeconds = cpuSeconds; self.peakRSSBytes = peakRSSBytes
        }
    }

    public let name: String
    /// Quantizes `input` (a GGUF) into `output` as ggml file type `type` ("Q4_0") with `threads`.
    public let run: @Sendable (_ input: String, _ output: String, _ type: String, _ threads: Int) throws -> Output

    public init(name: String, run: @escaping @Sendable (_ input: String, _ output: String, _ type: String, _ threads: Int) throws -> Output) {
        self.name = name; self.run = run
    }
}
