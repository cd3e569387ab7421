/// A number format for a 2-D weight [rows = output channels, cols = input dim]: the value recipes,
/// plans and files carry, backed by one `QuantCodec` that does the work.
///
/// Its text spelling (`description`, parsed by `init?(_:)`, and what `Codable` reads and writes) is
/// stable, for command lines and manifests:
/// `int8`, `int4-g128-sym`, `int4-g64-asym`, `fp8-tensor`, `fp8-channel`, `bf16`, `f16`, `f32`,
/// `mxfp4`, `nvfp4`, and ggml's blocks `q8_0`, `q4_0`, `q4_1`, `q5_0`, `q5_1`, `iq4_nl`, `gguf-mxfp4`. Parsing also takes reference.json's baseline names `int8-channel` and
/// `int4-gN` (symmetric). Two schemes are equal when they spell the same.
public struct QuantScheme: Hashable, Sendable {
    public let codec: any QuantCodec

    public init(codec: any QuantCodec) { self.codec = codec }

    public static func == (a: QuantScheme, b: QuantScheme) -> Bool { a.codec.name == b.codec.name }
    public func hash(into h: inout Hasher) { h.combine(codec.name) }

    /// Every format, by its parser; the first that accepts a spelling wins. A new format is a new
    /// `QuantCodec` file and one line here.
    static let registry: [@Sendable (String) -> (any QuantCodec)?] = [
        { Int8ChannelCodec.parse($0) },
        { Int4GroupCodec.parse($0) },
        { FP8Codec.parse($0) },
        { FloatCodec.parse($0) },
        { MXFP4Codec.parse($0) },
        { NVFP4Codec.parse($0) },
        // ggml's block formats, stored as ggml blocks (GGMLBlockCodec): llama.cpp's spellings.
        { Q8_0Block.parse($0) },
        { Q4_0Block.parse($0) },
        { Q4_1Block.parse($0) },
        { Q5_0Block.parse($0) },
        { Q5_1Block.parse($0) },
        { IQ4_NLBlock.parse($0) },
        { MXFP4Block.parse($0) },
    ]

    /// INT8 symmetric, one scale per row (`Int8ChannelCodec`).
    public static let int8Channel = QuantScheme(codec: Int8ChannelCodec())
    /// INT4 in groups of `group` input columns, symmetric or with a zero point (`Int4GroupCodec`).
    public static func int4(group: Int, symmetric: Bool) -> QuantScheme {
        QuantScheme(codec: Int4GroupCodec(group: group, symmetric: symmetric))
    }
    /// FP8 E4M3 with one scale for the whole tensor (or block of rows) (`FP8Codec`).
    public static let fp8Tensor = QuantScheme(codec: FP8Codec(perTensor: true))
    /// FP8 E4M3 with one scale per row.
    public static let fp8Channel = QuantScheme(codec: FP8Codec(perTensor: false))
    public static let bf16 = QuantScheme(codec: FloatCodec(.bf16))
    public static let f16 = QuantScheme(codec: FloatCodec(.f16))
    public static let f32 = QuantScheme(codec: FloatCodec(.f32))
}

extension QuantScheme: LosslessStringConvertible {
    public var description: String { codec.name }

    public init?(_ text: String) {
        let t = text.lowercased()
        for parse in Self.registry {
            if let c = parse(t) { self.init(codec: c); return }
        }
        return nil
    }
}

extension QuantScheme {
    /// The largest INT4 group width, for writers (`--group-size`, recipes) and readers alike, so
    /// every file written can be read back. A group wider than a row is one group per row, and no
    /// config dimension exceeds 2^24 (`ConfigReader.maxInt`).
    public static let maxInt4Group = 1 << 24

    /// The INT4 codec when this is an INT4 scheme (recipes re-group out_proj by head).
    public var int4: Int4GroupCodec? { codec as? Int4GroupCodec }
}

extension QuantScheme: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let scheme = QuantScheme(text) else {
            throw DecodingError.dataCorruptedError(in: container,
                                                   debugDescription: "unknown quantization scheme \"\(text)\"")
        }
        self = scheme
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Sizes of the buffers a scheme stores a whole [rows, cols] weight in (one block of rows).
public struct QuantLayout: Hashable, Sendable {
    /// Bytes of codes in all; rows are `codeBytesPerRow` apart.
    public var codeBytes: Int
    public var codeBytesPerRow: Int
    /// Scales in the `scales` section: rows for per-channel schemes, rows · groupsPerRow for
    /// grouped ones, 1 for fp8-tensor; each `scaleBits` wide.
    public var scaleCount: Int
    /// UInt8 zero points (asymmetric INT4 only): rows · groupsPerRow.
    public var zeroPointCount: Int
    /// Scales per row; 0 where the scale is per tensor or there is none.
    public var groupsPerRow: Int
    /// Bits of one scale: 32 (Float32), 8 (E8M0, E4M3).
    public var scaleBits: Int
    /// Float32 scales of the `global_scales` section (NVFP4's per-tensor second level).
    public var globalScaleCount: Int

    public init(codeBytes: Int, codeBytesPerRow: Int, scaleCount: Int, zeroPointCount: Int, groupsPerRow: Int,
                scaleBits: Int = 32, globalScaleCount: Int = 0) {
        self.codeBytes = codeBytes; self.codeBytesPerRow = codeBytesPerRow; self.scaleCount = scaleCount
        self.zeroPointCount = zeroPointCount; self.groupsPerRow = groupsPerRow
        self.scaleBits = scaleBits; self.globalScaleCount = globalScaleCount
    }

    /// Total storage bits: every section's.
    public var totalBits: Int { codeBytes * 8 + scaleCount * scaleBits + zeroPointCount * 8 + globalScaleCount * 32 }
}

extension QuantScheme {
    public func layout(rows: Int, cols: Int) -> QuantLayout {
        precondition(rows >= 0 && cols >= 0)
        var l = QuantLayout(codeBytes: 0, codeBytesPerRow: codec.codeBytesPerRow(cols: cols), scaleCount: 0,
                            zeroPointCount: 0, groupsPerRow: codec.scalesPerRow(cols: cols))
        for s in codec.sections(rows: rows, cols: cols, rowBlocks: 1) {
            switch s.name {
            case "codes": l.codeBytes = s.bytes
            case "scales": l.scaleCount = s.count; l.scaleBits = s.element.byteSize * 8
            case "zero_points": l.zeroPointCount = s.count
            case "global_scales": l.globalScaleCount = s.count
            default: preconditionFailure("\(self): unknown section \(s.name)")
            }
        }
        return l
    }

    /// Storage bits per weight of a [rows, cols] matrix, scales and zero points included, and the
    /// half byte that pads an odd-width INT4 row. E.g. int4-g128-sym on [2688, 1856] has 15 groups
    /// a row (the last one partial): 4 + 15 · 32 / 1856 ≈ 4.259.
    public func bitsPerWeight(rows: Int, cols: Int) -> Double {
        let n = rows * cols
        guard n > 0 else { return 0 }
        return Double(layout(rows: rows, cols: cols).totalBits) / Double(n)
    }

    /// Bits of one stored code.
    public var payloadBits: Int { codec.payloadBits }
}
