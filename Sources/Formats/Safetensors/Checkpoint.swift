#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Hugging Face model directory: config.json plus either model.safetensors or
/// model.safetensors.index.json and its shards. Every shard is mapped, never read whole.
public final class Checkpoint: @unchecked Sendable {
    public let directory: String
    public let config: ModelConfig
    /// config.json exactly as found, so a packed file can carry it verbatim.
    public let configBytes: [UInt8]
    public let files: [SafetensorsFile]
    /// Tensor names in the order a reader meets them (shard order, then data order).
    public let tensorNames: [String]
    /// Every file a conversion reads: config.json, the index, the shards and tokenizer.json (when
    /// present). An output must be none of them.
    public let inputFiles: [String]
    /// How the weights are quantized, when config.json (or a side file) says they are.
    public let quantization: (any QuantizedLayout)?
    private let location: [String: (file: Int, info: TensorInfo)]

    /// Opens a model directory, or a single .safetensors file whose directory holds config.json.
    public init(path: String) throws(FormatError) {
        var dir = path
        var single: String?
        if !isDirectory(path) {
            if let why = missingReason(path) { throw FormatError.io(file: path, message: why) }
            guard path.hasSuffix(".safetensors") else {
                throw FormatError.io(file: path, message: "not a model directory or a .safetensors file")
            }
            single = path
            dir = parentDirectory(path)
        }
        directory = dir
        let configPath = join(dir, "config.json")
        if let why = missingReason(configPath) {
            throw FormatError.io(file: configPath, message: why == "no such file or directory" ? "missing config.json" : why)
        }
        configBytes = try MappedFile.contents(of: configPath)
        let json: JSONValue
        do { json = try JSONParser.parse(configBytes) } catch {
            throw FormatError.invalidConfig(file: configPath, message: "not valid JSON: \(error)")
        }
        config = try ModelConfig(json: json, file: configPath)
        quantization = try QuantizedLayouts.detect(config: json, configPath: configPath, directory: dir)

        let indexPath = join(dir, "model.safetensors.index.json")
        var files: [SafetensorsFile] = []
        var location: [String: (file: Int, info: TensorInfo)] = [:]
        var names: [String] = []
        if single == nil && !fileExists(join(dir, "model.safetensors")) && fileExists(indexPath) {
            let shards = try Self.readIndex(indexPath)
            location.reserveCapacity(shards.map.count)
            var shardIndex: [String: Int] = [:]
            for shard in shards.order {
                let p = join(dir, shard)
                guard fileExists(p) else {
                    throw FormatError.invalidIndex(file: indexPath, message: "shard '\(shard)' named in weight_map does not exist")
                }
                shardIndex[shard] = files.count
                files.append(try SafetensorsFile(path: p))
            }
            for (name, shard) in shards.map {
                let fi = shardIndex[shard]!
                guard let info = files[fi].info(name) else {
                    throw FormatError.invalidIndex(file: indexPath, message: "tensor '\(name)' is mapped to shard '\(shard)' but that shard does not contain it")
                }
                location[name] = (fi, info)
            }
            for (fi, f) in files.enumerated() {
                for t in f.tensors where location[t.name]?.file == fi { names.append(t.name) }
            }
        } else {
            let p = single ?? join(dir, "model.safetensors")
            guard fileExists(p) else {
                throw FormatError.io(file: dir, message: "no model.safetensors or model.safetensors.index.json in the model directory")
            }
            let f = try SafetensorsFile(path: p)
            files = [f]
            for t in f.tensors { location[t.name] = (0, t); names.append(t.name) }
        }
        self.files = files
        self.location = location
        self.tensorNames = names
        var inputs = [configPath]
        if single == nil && !fileExists(join(dir, "model.safetensors")) && fileExists(indexPath) { inputs.append(indexPath) }
        inputs += files.map(\.path)
        if fileExists(join(dir, "tokenizer.json")) { inputs.append(join(dir, "tokenizer.json")) }
        if let q = quantization, let side = q.json["declared_in"]?.stringValue, side != configPath { inputs.append(side) }
        self.inputFiles = inputs
    }

    public func view(_ name: String) -> TensorView? {
        guard let l = location[name] else { return nil }
        return TensorView(info: l.info, file: files[l.file].file)
    }

    public func info(_ name: String) -> TensorInfo? { location[name]?.info }

    /// Total bytes of tensor data (what a conversion reads).
    public var tensorBytes: Int { location.values.reduce(0) { $0 + $1.info.byteCount } }

    static func readIndex(_ path: String) throws(FormatError) -> (order: [String], map: [(String, String)]) {
        let bytes = try MappedFile.contents(of: path)
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch {
            throw FormatError.invalidIndex(file: path, message: "not valid JSON: \(error)")
        }
        guard let wm = json["weight_map"] else { throw FormatError.invalidIndex(file: path, message: "missing 'weight_map'") }
        guard let o = wm.objectValue else { throw FormatError.invalidIndex(file: path, message: "'weight_map' is not an object") }
        var order: [String] = []
        var seen = Set<String>()
        var map: [(String, String)] = []
        for (name, v) in o {
            guard let shard = v.stringValue, !shard.isEmpty else {
                throw FormatError.invalidIndex(file: path, message: "weight_map entry for '\(name)' is not a file name")
            }
            if seen.insert(shard).inserted {
                // Checked once per shard, not once per tensor: an index has thousands of entries.
                guard !shard.hasPrefix("/"), !shard.split(separator: "/").contains("..") else {
                    throw FormatError.invalidIndex(file: path, message: "shard '\(shard)' for '\(name)' points outside the model directory")
                }
                order.append(shard)
            }
            map.append((name, shard))
        }
        guard !map.isEmpty else { throw FormatError.invalidIndex(file: path, message: "'weight_map' is empty") }
        order.sort()
        return (order, map)
    }
}

func fileExists(_ p: String) -> Bool { var st = stat(); return stat(p, &st) == 0 }
func isDirectory(_ p: String) -> Bool { var st = stat(); return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR }
func parentDirectory(_ p: String) -> String {
    guard let i = p.lastIndex(of: "/") else { return "." }
    return i == p.startIndex ? "/" : String(p[..<i])
}
func join(_ a: String, _ b: String) -> String { a.hasSuffix("/") ? a + b : a + "/" + b }
