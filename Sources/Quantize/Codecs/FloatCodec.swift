import Formats

/// `bf16`, `f16`, `f32`: the little-endian element bit patterns, no scales. Not a grid: calibrated
/// encoders store these rows as round-to-nearest does.
public struct FloatCodec: QuantCodec {
    public let dtype: DType
    public init(_ dtype: DType) { self.dtype = dtype }
    public static func parse(_ text: String) -> Self? {
        switch text {
        case "bf16": return Self(.bf16)
        case "f16": return Self(.f16)
        case "f32": return Self(.f32)
        default: return nil
        }
    }

    public var name: String { dtype == .bf16 ? "bf16" : dtype == .f16 ? "f16" : "f32" }
    public var payloadBits: Int { dtype.byteSize * 8 }
    public var codeElement: ElementType { dtype == .bf16 ? .bf16 : dtype == .f16 ? .f16 : .f32 }
    public func codeBytesPerRow(cols: Int) -> Int { cols * dtype.byteSize }
    public func scalesPerRow(cols: Int) -> Int { 0 }
    public var verbatimDType: DType? { dtype }
    public var compression: SectionEncoding { dtype == .f32 ? .zstdBytes4 : .zstdBytes2 }
    public var grid: QuantGrid? { nil }

    public func encode(_ w: UnsafePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float,
                       codes: UnsafeMutableRawPointer, scales: UnsafeMutableRawPointer?, zeroPoints: UnsafeMutablePointer<UInt8>?) {
        let n = rows.count * cols, first = rows.lowerBound * cols
        switch dtype {
        case .bf16:
            codes.withMemoryRebound(to: UInt16.self, capacity: rows.upperBound * cols) { BF16Codec.encode(w + first, count: n, into: $0 + first) }
        case .f16:
            codes.withMemoryRebound(to: UInt16.self, capacity: rows.upperBound * cols) { F16Codec.encode(w + first, count: n, into: $0 + first) }
        default:
            (codes + first * 4).copyMemory(from: w + first, byteCount: n * 4)
        }
    }

    public func decode(codes: UnsafeRawPointer, scales: UnsafeRawPointer?, zeroPoints: UnsafePointer<UInt8>?, rowScale: Float,
                       cols: Int, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let n = rows.count * cols, first = rows.lowerBound * cols
        switch dtype {
        case .bf16:
            codes.withMemoryRebound(to: UInt16.self, capacity: rows.upperBound * cols) { BF16Codec.decode($0 + first, count: n, into: out + first) }
        case .f16:
            codes.withMemoryRebound(to: UInt16.self, capacity: rows.upperBound * cols) { F16Codec.decode($0 + first, count: n, into: out + first) }
        default:
            UnsafeMutableRawPointer(out + first).copyMemory(from: codes + first * 4, byteCount: n * 4)
        }
    }

    public func fakeQuant(_ w: UnsafeMutablePointer<Float>, cols: Int, rows: Range<Int>, rowScale: Float) {
        let n = rows.count * cols, first = w + rows.lowerBound * cols
        switch dtype {
        case .bf16: BF16Codec.fakeQuant(first, count: n)
        case .f16: F16Codec.fakeQuant(first, count: n)
        default: break
        }
    }
}
