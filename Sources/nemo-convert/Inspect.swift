import ArgumentParser
import Formats

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's architecture, parameter counts, dtypes and tensor table.")

    @Argument(help: "A model directory (config.json + safetensors), a .safetensors file, or a packed file.")
    var model: String

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        do {
            let ck = try Checkpoint(path: model)
            let map = try TensorMap(checkpoint: ck)
            print(ck.config.pattern, map.tensors.count)
        } catch { fail(error) }
    }
}
