/// What a MODEL argument names, told apart once for every command: a packed file or a GGUF file
/// (by their magic bytes), or a Hugging Face checkpoint — a directory with model.safetensors or a shard index, or
/// one .safetensors file next to its config.json. A checkpoint that is already quantized is still
/// a checkpoint; its layout (`QuantizedLayout`) is found when it is opened.
///
/// A new input format is one case here and one reader beside the others.
public enum ModelFormat: String, Sendable {
    case packed
    case gguf = "GGUF file"
    case safetensorsDirectory = "safetensors directory"
    case safetensorsIndex = "sharded safetensors"
    case safetensorsFile = "safetensors file"

    /// Recognises `path` from its contents, never its name alone; a path that is none of these is
    /// an error saying what was looked for.
    public static func detect(_ path: String) throws(FormatError) -> ModelFormat {
        if isDirectory(path) {
            if fileExists(join(path, "model.safetensors")) { return .safetensorsDirectory }
            if fileExists(join(path, "model.safetensors.index.json")) { return .safetensorsIndex }
            if fileExists(join(path, "config.json")) {
                throw FormatError.io(file: path, message: "no model.safetensors or model.safetensors.index.json in the model directory")
            }
            throw FormatError.io(file: path, message: "not a model directory: no config.json")
        }
        if let why = missingReason(path) { throw FormatError.io(file: path, message: why) }
        if PackedFile.isPacked(path: path) { return .packed }
        if GGUFFile.isGGUF(path: path) { return .gguf }
        if path.hasSuffix(".safetensors") { return .safetensorsFile }
        throw FormatError.io(file: path, message: "not a packed file (no NEMOPACK magic), a GGUF file (no GGUF magic), a model directory or a .safetensors file")
    }

    /// A Hugging Face checkpoint (safetensors), as opposed to a single converted file.
    public var isCheckpoint: Bool { self != .packed && self != .gguf }
}

extension Checkpoint {
    /// What a file converted from this checkpoint records about its source (docs/FORMAT.md,
    /// "Header"): each safetensors file's name, size and header xxHash64, and, for a checkpoint
    /// that was already quantized, its layout and producer.
    public var provenance: JSONObject {
        var sources: [JSONValue] = []
        for f in files {
            sources.append(["file": .string(String(f.path.split(separator: "/").last ?? "")), "bytes": .int(f.file.count),
                            "header_xxh64": .string(XXH64.hex(XXH64.hash(UnsafeRawBufferPointer(rebasing: f.file.bytes[0..<f.dataOffset]))))])
        }
        var o: JSONObject = ["sources": .array(sources)]
        if let q = quantization { o["source_quantization"] = q.json }
        return o
    }
}
