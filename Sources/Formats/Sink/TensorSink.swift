/// Where a conversion's tensors go: a packed file today (`PackedWriter`), GGUF and Hugging Face
/// quantized checkpoints next. The converter hands every tensor over the same way — begin the
/// tensor, stream its sections (codes, scales, …) in pieces, end it — and `finish` makes the
/// output appear atomically (temporary file, fsync, rename); `discard` leaves nothing behind.
///
/// A sink says what it can store (`rules`) so a plan is checked before anything is written, and
/// reads back what it wrote so sequential calibration runs the next layer on exactly the values a
/// reader of the finished file will see.
public protocol TensorSink: AnyObject {
    /// The output file.
    var path: String { get }
    /// What this sink stores; `SinkRules.violations` in Quantize checks a plan against it.
    var rules: SinkRules { get }

    /// Declares every tensor before any is written, in writing order. Formats whose header lists
    /// the tensors ahead of their data (GGUF) fix their layout here; others need not implement it.
    func prepare(_ tensors: [SinkTensor]) throws(FormatError)

    func beginTensor(_ tensor: SinkTensor) throws(FormatError)
    /// Starts section `name` of the open tensor (`codes`, `scales`, `dt.codes`, …; docs/FORMAT.md).
    /// `encoding` other than raw is a request the sink may decline (a packed file keeps a section
    /// raw when compression saves too little).
    func beginSection(_ name: String, encoding: SectionEncoding) throws(FormatError)
    func appendToSection(_ bytes: UnsafeRawBufferPointer) throws(FormatError)
    func endSection() throws(FormatError)
    /// Closes the open tensor, storing `attributes` with it; returns the bytes its sections took.
    @discardableResult
    func endTensor(attributes: JSONObject) throws(FormatError) -> Int

    /// The bytes of a section of a tensor written earlier; nil when the sink stored it in a form
    /// that is not read back (a compressed high-precision section, whose values are the source's).
    func readBack(tensor: String, section: String) throws(FormatError) -> [UInt8]?

    /// Stores a named file next to the tensors (tokenizer.json), where the format has a place for it.
    func addBlob(_ name: String, _ bytes: [UInt8]) throws(FormatError)
    /// Writes whatever the format puts after the tensors, makes the file durable and moves it into place.
    func finish(metadata: JSONObject) throws(FormatError)
    /// Abandons the output; the temporary file is removed.
    func discard()

    /// Size of the finished file (after `finish`).
    var fileSize: Int { get }
    /// Bytes compression saved, for the report (0 for formats that do not compress).
    var compressedBytesSaved: Int { get }
}

extension TensorSink {
    public func prepare(_ tensors: [SinkTensor]) throws(FormatError) {}

    /// One whole section at once.
    public func writeSection(_ name: String, _ bytes: UnsafeRawBufferPointer, encoding: SectionEncoding = .raw) throws(FormatError) {
        try beginSection(name, encoding: encoding)
        try appendToSection(bytes)
        try endSection()
    }
}

/// A tensor's entry as the converter opens it in a sink.
public struct SinkTensor: Sendable {
    public var name: String
    public var role: TensorRole
    public var layer: Int?
    public var expert: Int?
    public var shape: [Int]
    /// The scheme's spelling (`int4-g128-sym`, or `mixed` for a tensor whose row segments differ).
    public var scheme: String
    /// Each row segment's name and scheme, in row order (one unnamed segment for most tensors).
    public var segments: [(name: String, scheme: String)]
    /// The dtype the source stored it in.
    public var sourceDType: DType

    public init(name: String, role: TensorRole, layer: Int?, expert: Int?, shape: [Int], scheme: String,
                segments: [(name: String, scheme: String)], sourceDType: DType) {
        self.name = name; self.role = role; self.layer = layer; self.expert = expert; self.shape = shape
        self.scheme = scheme; self.segments = segments; self.sourceDType = sourceDType
    }
}

/// What a sink can store, in the terms plans use. A packed file stores everything; a GGUF file,
/// for one, stores one ggml type per tensor and only the types llama.cpp knows.
public struct SinkRules: Sendable {
    /// The output format's name, for messages (`packed file`, `GGUF`).
    public var format: String
    /// Scheme spellings the sink stores; nil for any.
    public var schemes: Set<String>?
    /// Whether a tensor's row segments may use different schemes (Mamba in_proj's dt rows kept in
    /// high precision while the rest is quantized).
    public var mixedSchemesPerTensor: Bool
    /// Element types of scales the sink stores (`f32`, `f16`, `e8m0`, `e4m3`); nil for any.
    public var scaleElements: Set<String>?
    /// A format's own check of one tensor (its shape and schemes against the format's layout: a
    /// GGUF row must be whole ggml blocks, a compressed-tensors group must divide the row): one
    /// reason per problem, empty when it can be stored.
    public var tensorCheck: (@Sendable (SinkTensor) -> [String])?

    public init(format: String, schemes: Set<String>? = nil, mixedSchemesPerTensor: Bool = true, scaleElements: Set<String>? = nil,
                tensorCheck: (@Sendable (SinkTensor) -> [String])? = nil) {
        self.format = format; self.schemes = schemes; self.mixedSchemesPerTensor = mixedSchemesPerTensor
        self.scaleElements = scaleElements; self.tensorCheck = tensorCheck
    }

    /// Stores anything a plan can ask for.
    public static let anything = SinkRules(format: "packed file")
}
