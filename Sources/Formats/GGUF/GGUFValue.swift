/// One metadata value of a GGUF file: the thirteen value types of the format (gguf.md, "Metadata
/// value types"), arrays holding one element type. The type id is what a file stores before the
/// value; `GGUFFile` reads them, `GGUFEncoder` writes them.
public indirect enum GGUFValue: Equatable, Sendable, CustomStringConvertible {
    case u8(UInt8), i8(Int8), u16(UInt16), i16(Int16), u32(UInt32), i32(Int32), f32(Float)
    case bool(Bool), string(String)
    /// Element type id and elements (all of that type).
    case array(GGUFValueType, [GGUFValue])
    case u64(UInt64), i64(Int64), f64(Double)

    public var type: GGUFValueType {
        switch self {
        case .u8: return .u8
        case .i8: return .i8
        case .u16: return .u16
        case .i16: return .i16
        case .u32: return .u32
        case .i32: return .i32
        case .f32: return .f32
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        case .u64: return .u64
        case .i64: return .i64
        case .f64: return .f64
        }
    }

    /// The value as an integer when it is one of the integer types (or a bool).
    public var intValue: Int? {
        switch self {
        case .u8(let v): return Int(v)
        case .i8(let v): return Int(v)
        case .u16(let v): return Int(v)
        case .i16(let v): return Int(v)
        case .u32(let v): return Int(v)
        case .i32(let v): return Int(v)
        case .u64(let v): return v <= UInt64(Int.max) ? Int(v) : nil
        case .i64(let v): return Int(v)
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .f32(let v): return Double(v)
        case .f64(let v): return v
        default: return intValue.map(Double.init)
        }
    }

    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var arrayValue: [GGUFValue]? { if case .array(_, let a) = self { return a }; return nil }

    public var description: String {
        switch self {
        case .string(let s): return s.count > 60 ? "\"\(s.prefix(57))…\"" : "\"\(s)\""
        case .array(let t, let a):
            let shown = a.prefix(8).map(\.description).joined(separator: ", ")
            return "[\(t)] × \(a.count): [\(shown)\(a.count > 8 ? ", …" : "")]"
        case .bool(let b): return String(b)
        case .f32(let v): return String(v)
        case .f64(let v): return String(v)
        default: return String(intValue ?? 0)
        }
    }
}

/// Value type ids as a GGUF file stores them.
public enum GGUFValueType: UInt32, Sendable, CustomStringConvertible {
    case u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, bool = 7, string = 8, array = 9
    case u64 = 10, i64 = 11, f64 = 12

    /// Bytes of one value of a fixed-size type; nil for string and array.
    public var fixedSize: Int? {
        switch self {
        case .u8, .i8, .bool: return 1
        case .u16, .i16: return 2
        case .u32, .i32, .f32: return 4
        case .u64, .i64, .f64: return 8
        case .string, .array: return nil
        }
    }

    public var description: String {
        switch self {
        case .u8: return "u8"
        case .i8: return "i8"
        case .u16: return "u16"
        case .i16: return "i16"
        case .u32: return "u32"
        case .i32: return "i32"
        case .f32: return "f32"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        case .u64: return "u64"
        case .i64: return "i64"
        case .f64: return "f64"
        }
    }
}

/// Serializes GGUF header pieces (little-endian, strings as u64 length + UTF-8 bytes).
public struct GGUFEncoder {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    public mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }

    public mutating func keyValue(_ key: String, _ v: GGUFValue) {
        string(key)
        u32(v.type.rawValue)
        value(v)
    }

    public mutating func value(_ v: GGUFValue) {
        switch v {
        case .u8(let x): bytes.append(x)
        case .i8(let x): bytes.append(UInt8(bitPattern: x))
        case .u16(let x): withUnsafeBytes(of: x.littleEndian) { bytes += $0 }
        case .i16(let x): withUnsafeBytes(of: x.littleEndian) { bytes += $0 }
        case .u32(let x): u32(x)
        case .i32(let x): withUnsafeBytes(of: x.littleEndian) { bytes += $0 }
        case .f32(let x): u32(x.bitPattern)
        case .bool(let b): bytes.append(b ? 1 : 0)
        case .string(let s): string(s)
        case .array(let t, let a):
            u32(t.rawValue); u64(UInt64(a.count))
            for e in a { value(e) }
        case .u64(let x): u64(x)
        case .i64(let x): withUnsafeBytes(of: x.littleEndian) { bytes += $0 }
        case .f64(let x): u64(x.bitPattern)
        }
    }

    public mutating func pad(to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }
}
