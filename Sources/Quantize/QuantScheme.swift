/// A number format for a 2-D weight [rows = output channels, cols = input dim].
///
/// Its text spelling (`description`, parsed by `init?(_:)`, and what `Codable` reads and writes) is
/// stable, for command lines and manifests:
/// `int8`, `int4-g128-sym`, `int4-g64-asym`, `fp8-tensor`, `fp8-channel`, `bf16`, `f16`, `f32`.
/// Parsing also takes reference.json's baseline names `int8-channel` and `int4-gN` (symmetric).
public enum QuantScheme: Hashable, Sendable {
    /// INT8 symmetric, one scale per row (`Int8Codec`).
    case int8Channel
    /// INT4 in groups of `group` input columns, symmetric or with a zero point (`Int4Codec`).
    case int4(group: Int, symmetric: Bool)
    /// FP8 E4M3 with one scale for the whole tensor (`FP8E4M3`).
    case fp8Tensor
    /// FP8 E4M3 with one scale per row.
    case fp8Channel
    case bf16
    case f16
    case f32
}

extension QuantScheme: LosslessStringConvertible {
    public var description: String {
        switch self {
        case .int8Channel: return "int8"
        case let .int4(group, symmetric): return "int4-g\(group)-\(symmetric ? "sym" : "asym")"
        case .fp8Tensor: return "fp8-tensor"
        case .fp8Channel: return "fp8-channel"
        case .bf16: return "bf16"
        case .f16: return "f16"
        case .f32: return "f32"
        }
    }

    public init?(_ text: String) {
        switch text.lowercased() {
        case "int8", "int8-channel": self = .int8Channel
        case "fp8-tensor": self = .fp8Tensor
        case "fp8-channel": self = .fp8Channel
        case "bf16": self = .bf16
        case "f16": self = .f16
        case "f32": self = .f32
        case let t where t.hasPrefix("int4-g"):
            let parts = t.dropFirst("int4-g".count).split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 1 || parts.count == 2,
                  !parts[0].isEmpty, parts[0].utf8.count <= 9,
                  parts[0].utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  let group = Int(parts[0]), group > 0, group <= Self.maxInt4Group
            else { return nil }
            if parts.count == 1 { self = .int4(group: group, symmetric: true); return }
            switch parts[1] {
            case "sym": self = .int4(group: group, symmetric: true)
            case "asym": self = .int4(group: group, symmetric: false)
            default: return nil
            }
        default: return nil
        }
    }
}

extension QuantScheme {
    /// The largest INT4 group width, for writers (`--group-size`, recipes) and readers alike, so
    /// every file written can be read back. A group wider than a row is one group per row, and no
    /// config dimension exceeds 2^24 (`ConfigReader.maxInt`).
    public static let maxInt4Group = 1 << 24
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

/// Sizes of the buffers a scheme stores a [rows, cols] weight in (counts of elements).
public struct QuantLayout: Hashable, Sendable {
    /// Bytes of codes in all; rows are `codeBytesPerRow` apart.
    public var codeBytes: Int
    public var codeBytesPerRow: Int
    /// Float32 scales: rows for per-channel schemes, rows · groupsPerRow for INT4, 1 for fp8-tensor.
    public var scaleCount: Int
    /// UInt8 zero points (asymmetric INT4 only): rows · groupsPerRow.
    public var zeroPointCount: Int
    /// INT4 groups per row; 1 for per-channel schemes, 0 where there are no scales.
    public var groupsPerRow: Int

    /// Total storage bits: codes + 32 per scale + 8 per zero point.
    public var totalBits: Int { codeBytes * 8 + scaleCount * 32 + zeroPointCount * 8 }
}

extension QuantScheme {
    public func layout(rows: Int, cols: Int) -> QuantLayout {
        precondition(rows >= 0 && cols >= 0)
        switch self {
        case .int8Channel, .fp8Channel:
            return QuantLayout(codeBytes: rows * cols, codeBytesPerRow: cols, scaleCount: rows,
                               zeroPointCount: 0, groupsPerRow: 1)
        case .fp8Tensor:
            return QuantLayout(codeBytes: rows * cols, codeBytesPerRow: cols, scaleCount: 1,
                               zeroPointCount: 0, groupsPerRow: 0)
        case let .int4(group, symmetric):
            let groups = Int4Codec.groupsPerRow(cols: cols, group: group)
            let perRow = Int4Codec.bytesPerRow(cols: cols)
            return QuantLayout(codeBytes: rows * perRow, codeBytesPerRow: perRow, scaleCount: rows * groups,
                               zeroPointCount: symmetric ? 0 : rows * groups, groupsPerRow: groups)
        case .bf16, .f16:
            return QuantLayout(codeBytes: rows * cols * 2, codeBytesPerRow: cols * 2, scaleCount: 0,
                               zeroPointCount: 0, groupsPerRow: 0)
        case .f32:
            return QuantLayout(codeBytes: rows * cols * 4, codeBytesPerRow: cols * 4, scaleCount: 0,
                               zeroPointCount: 0, groupsPerRow: 0)
        }
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
    public var payloadBits: Int {
        switch self {
        case .int8Channel, .fp8Tensor, .fp8Channel: return 8
        case .int4: return 4
        case .bf16, .f16: return 16
        case .f32: return 32
        }
    }
}
