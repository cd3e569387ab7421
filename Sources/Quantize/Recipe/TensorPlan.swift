import Formats

/// How one tensor is stored: one or more row segments, each with its own scheme.
///
/// Most tensors are one segment. Mamba in_proj is five — z [I], x [I], B [G·N], C [G·N], dt [Hm] —
/// so the dt rows can stay high-precision and so per-tensor scales become per-SSM-head (z, x:
/// blocks of head_dim rows) or per-group (B, C: blocks of state_size rows); a scale never spans two
/// heads.
public struct TensorPlan: Equatable, Sendable {
    public struct Segment: Equatable, Sendable {
        /// "" for a whole tensor; z, x, B, C, dt for in_proj.
        public var name: String
        public var rows: Range<Int>
        public var scheme: QuantScheme
        /// For schemes with a scale per block of rows (fp8-tensor, NVFP4's global scale): rows
        /// sharing one (a head, a group); nil = the whole segment.
        public var blockRows: Int?

        public init(name: String, rows: Range<Int>, scheme: QuantScheme, blockRows: Int? = nil) {
            self.name = name; self.rows = rows; self.scheme = scheme; self.blockRows = blockRows
        }

        /// Blocks of rows with their own block scale; 0 for schemes without one.
        public var rowBlocks: Int {
            guard scheme.codec.rowBlockScale != nil else { return 0 }
            if let b = blockRows, b > 0 { return (rows.count + b - 1) / b }
            return 1
        }

        /// The sections this segment stores, named as in the file (`scales`, `z.scales`), with
        /// element types and counts: what writers write, readers check and sizes add up.
        public func sections(cols: Int) -> [SectionSpec] {
            scheme.codec.sections(rows: rows.count, cols: cols, rowBlocks: rowBlocks).map {
                SectionSpec(name: section($0.name), element: $0.element, count: $0.count)
            }
        }

        /// Number of elements of the `scales` section.
        public func scaleCount(cols: Int) -> Int {
            scheme.codec.sections(rows: rows.count, cols: cols, rowBlocks: rowBlocks).first { $0.name == "scales" }?.count ?? 0
        }

        public func storageBits(cols: Int) -> Int { sections(cols: cols).reduce(0) { $0 + $1.bytes * 8 } }
    }

    public var segments: [Segment]
    /// Shape as stored: 2-D [rows, cols] for matrices; vectors and conv kernels are flattened to
    /// [1, n] or [C, K] for storage but keep their original shape in the file's tensor table.
    public var rows: Int
    public var cols: Int

    public init(segments: [Segment], rows: Int, cols: Int) {
        self.segments = segments; self.rows = rows; self.cols = cols
    }

    /// The scheme when there is one segment, else a summary like `int8+bf16`.
    public var summary: String {
        var seen: [String] = []
        for s in segments where !seen.contains(s.scheme.description) { seen.append(s.scheme.description) }
        return seen.joined(separator: "+")
    }

    public var storageBits: Int { segments.reduce(0) { $0 + $1.storageBits(cols: cols) } }
    public var isQuantized: Bool { segments.contains { $0.scheme.payloadBits < 16 } }
}
