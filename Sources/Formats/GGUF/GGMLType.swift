/// The tensor element types of ggml (the library under llama.cpp), as a GGUF file names them: the
/// type id a tensor info stores, the name llama.cpp prints, and the block geometry — how many
/// elements one block holds and how many bytes it takes. Like ggml's own type-traits table, this
/// is data, not code paths: a reader sizes a tensor with `rowBytes(cols:)` whatever the type, and
/// the codecs that produce or decode the bytes live above this target (Quantize's `GGML`).
///
/// Ids and sizes are ggml's (`ggml.c`'s type traits, gguf-py's `GGML_QUANT_SIZES`); ids 4, 5 and
/// 31–33 were retired upstream and are never written.
public enum GGMLType: UInt32, CaseIterable, Sendable {
    case f32 = 0, f16 = 1
    case q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28
    case iq1_m = 29, bf16 = 30, tq1_0 = 34, tq2_0 = 35, mxfp4 = 39, nvfp4 = 40, q1_0 = 41

    /// Elements in the super-block of the k-quants and most i-quants.
    public static let superBlock = 256

    /// (name, elements per block, bytes per block) — one row of the traits table.
    public struct Traits: Sendable, Equatable {
        public let name: String
        public let blockSize: Int
        public let typeSize: Int
    }

    /// The traits of every type, indexed by case. Block byte counts spelled as their fields add up
    /// (f16 scale `d` = 2, …) so each can be checked against the block layout it describes.
    public var traits: Traits {
        let k = Self.superBlock
        switch self {
        case .f32: return Traits(name: "f32", blockSize: 1, typeSize: 4)
        case .f16: return Traits(name: "f16", blockSize: 1, typeSize: 2)
        case .bf16: return Traits(name: "bf16", blockSize: 1, typeSize: 2)
        case .f64: return Traits(name: "f64", blockSize: 1, typeSize: 8)
        case .i8: return Traits(name: "i8", blockSize: 1, typeSize: 1)
        case .i16: return Traits(name: "i16", blockSize: 1, typeSize: 2)
        case .i32: return Traits(name: "i32", blockSize: 1, typeSize: 4)
        case .i64: return Traits(name: "i64", blockSize: 1, typeSize: 8)
        case .q4_0: return Traits(name: "q4_0", blockSize: 32, typeSize: 2 + 16)
        case .q4_1: return Traits(name: "q4_1", blockSize: 32, typeSize: 2 + 2 + 16)
        case .q5_0: return Traits(name: "q5_0", blockSize: 32, typeSize: 2 + 4 + 16)
        case .q5_1: return Traits(name: "q5_1", blockSize: 32, typeSize: 2 + 2 + 4 + 16)
        case .q8_0: return Traits(name: "q8_0", blockSize: 32, typeSize: 2 + 32)
        case .q8_1: return Traits(name: "q8_1", blockSize: 32, typeSize: 4 + 4 + 32)
        case .q2_K: return Traits(name: "q2_K", blockSize: k, typeSize: 2 + 2 + k / 16 + k / 4)
        case .q3_K: return Traits(name: "q3_K", blockSize: k, typeSize: 2 + k / 4 + k / 8 + 12)
        case .q4_K: return Traits(name: "q4_K", blockSize: k, typeSize: 2 + 2 + 12 + k / 2)
        case .q5_K: return Traits(name: "q5_K", blockSize: k, typeSize: 2 + 2 + 12 + k / 8 + k / 2)
        case .q6_K: return Traits(name: "q6_K", blockSize: k, typeSize: k / 2 + k / 4 + k / 16 + 2)
        case .q8_K: return Traits(name: "q8_K", blockSize: k, typeSize: 4 + k + k / 8)
        case .iq2_xxs: return Traits(name: "iq2_xxs", blockSize: k, typeSize: 2 + k / 4)
        case .iq2_xs: return Traits(name: "iq2_xs", blockSize: k, typeSize: 2 + k / 4 + k / 32)
        case .iq2_s: return Traits(name: "iq2_s", blockSize: k, typeSize: 2 + k / 4 + k / 16)
        case .iq3_xxs: return Traits(name: "iq3_xxs", blockSize: k, typeSize: 2 + k / 4 + k / 8)
        case .iq3_s: return Traits(name: "iq3_s", blockSize: k, typeSize: 2 + k / 4 + k / 32 + k / 8 + 4)
        case .iq1_s: return Traits(name: "iq1_s", blockSize: k, typeSize: 2 + k / 8 + k / 16)
        case .iq1_m: return Traits(name: "iq1_m", blockSize: k, typeSize: k / 8 + k / 16 + k / 32)
        case .iq4_nl: return Traits(name: "iq4_nl", blockSize: 32, typeSize: 2 + 16)
        case .iq4_xs: return Traits(name: "iq4_xs", blockSize: k, typeSize: 2 + 2 + k / 64 + k / 2)
        case .tq1_0: return Traits(name: "tq1_0", blockSize: k, typeSize: 2 + 4 * 13)
        case .tq2_0: return Traits(name: "tq2_0", blockSize: k, typeSize: 2 + 64)
        case .mxfp4: return Traits(name: "mxfp4", blockSize: 32, typeSize: 1 + 16)
        case .nvfp4: return Traits(name: "nvfp4", blockSize: 64, typeSize: 4 + 32)
        case .q1_0: return Traits(name: "q1_0", blockSize: 128, typeSize: 2 + 16)
        }
    }

    /// The name llama.cpp prints (`ggml_type_name`), e.g. `q4_K`, `iq4_nl`.
    public var name: String { traits.name }
    public var blockSize: Int { traits.blockSize }
    public var typeSize: Int { traits.typeSize }
    /// True for the block-quantized types (more than one element per block).
    public var isQuantized: Bool { traits.blockSize > 1 }

    /// The type named `name` (ggml's spelling; case-insensitive), or nil.
    public init?(name: String) {
        let n = name.lowercased()
        guard let t = Self.allCases.first(where: { $0.name.lowercased() == n }) else { return nil }
        self = t
    }

    /// Bytes of one row of `cols` elements; nil when `cols` is not a whole number of blocks, which
    /// ggml cannot store (a GGUF tensor's first dimension must be a multiple of the block size).
    public func rowBytes(cols: Int) -> Int? {
        guard cols >= 0, cols % blockSize == 0 else { return nil }
        let (bytes, overflow) = (cols / blockSize).multipliedReportingOverflow(by: typeSize)
        return overflow ? nil : bytes
    }
}
