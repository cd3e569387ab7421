/// Everything that can be wrong with an input file, phrased for the person who has to fix it.
///
/// Each case carries the file and, where there is one, the tensor, because "invalid offset" is
/// useless without knowing which of 30 shards and 6,000 tensors it came from.
public enum FormatError: Error, Equatable, CustomStringConvertible, Sendable {
    case io(file: String, message: String)
    /// Writing an output failed (disk full, read-only file system, no permission): the input was
    /// fine, so scripts see a different exit code (73) than for a bad input (65).
    case output(file: String, message: String)
    case invalidHeader(file: String, message: String)
    case invalidTensor(file: String, tensor: String, message: String)
    case invalidIndex(file: String, message: String)
    case invalidConfig(file: String, message: String)
    case missingTensor(file: String, tensor: String)
    case shapeMismatch(file: String, tensor: String, expected: [Int], actual: [Int])
    case unsupported(file: String, tensor: String?, message: String)
    case checksum(file: String, tensor: String, message: String)
    case modelMismatch(file: String, message: String)
    /// A GGUF file's header, metadata or tensor table is malformed (the message names the key or tensor).
    case invalidGGUF(file: String, message: String)

    public var description: String {
        switch self {
        case .io(let f, let m): return "\(f): \(m)"
        case .output(let f, let m): return "\(f): \(m)"
        case .invalidHeader(let f, let m): return "\(f): invalid safetensors header: \(m)"
        case .invalidTensor(let f, let t, let m): return "\(f): tensor '\(t)': \(m)"
        case .invalidIndex(let f, let m): return "\(f): invalid shard index: \(m)"
        case .invalidConfig(let f, let m): return "\(f): invalid config: \(m)"
        case .missingTensor(let f, let t): return "\(f): missing tensor '\(t)'"
        case .shapeMismatch(let f, let t, let e, let a):
            return "\(f): tensor '\(t)' has shape \(a), expected \(e)"
        case .unsupported(let f, let t, let m):
            return t.map { "\(f): tensor '\($0)': \(m)" } ?? "\(f): \(m)"
        case .checksum(let f, let t, let m): return "\(f): tensor '\(t)': checksum mismatch: \(m)"
        case .modelMismatch(let f, let m): return "\(f): checkpoint does not match config.json: \(m)"
        case .invalidGGUF(let f, let m): return "\(f): invalid GGUF file: \(m)"
        }
    }
}
