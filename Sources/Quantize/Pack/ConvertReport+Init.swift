extension ConvertReport {
    /// For conversions driven from outside this module (calibrated conversion).
    public init(output: String, inputBytes: Int, outputBytes: Int, seconds: Double, entries tensors: [Entry], compressedBytesSaved: Int) {
        self.output = output; self.inputBytes = inputBytes; self.outputBytes = outputBytes
        self.seconds = seconds; self.tensors = tensors; self.compressedBytesSaved = compressedBytesSaved
    }
}
