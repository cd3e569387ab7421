import ArgumentParser
import Calibrate

/// `convert`'s calibration options (docs/CALIBRATION.md), declared once with their rules, and
/// turned into the library's `CalibrationOptions`.
struct CalibrationArguments: ParsableArguments {
    @Option(help: ArgumentHelp("Calibration text (UTF-8): run it through the model and quantize with what its activations show.",
                               valueName: "file"))
    var calib: String?

    @Option(help: "Calibration windows of --ctx tokens (fewer if the text is shorter).")
    var calibWindows = 128

    @Option(help: "Tokens per calibration window.")
    var ctx = 256

    @Option(help: "Calibration method (default gptq with --calib or --stats).")
    var method: CalibrationMethod?

    @Flag(inversion: .prefixedNo, help: "Quantize layer by layer, calibrating each layer on the quantized layers' outputs.")
    var sequential = true

    @Option(help: "GPTQ damping, a fraction of the Hessian's mean diagonal.")
    var damp = 0.01

    @Flag(inversion: .prefixedNo, help: "GPTQ act-order: quantize input columns by decreasing activation energy.")
    var actOrder = true

    @Flag(inversion: .prefixedNo, help: "GPTQ: fold activation-aware (AWQ) scales into the norms first (measured worse on the fixtures).")
    var foldScales = false

    @Option(help: ArgumentHelp("Save the collected calibration statistics (mergeable; reuse with --stats).", valueName: "file"))
    var saveStats: String?

    @Option(help: ArgumentHelp("Calibrate from statistics files saved earlier instead of running text (repeat to merge).", valueName: "file"))
    var stats: [String] = []

    /// Whether conversion is calibrated at all (from text or from saved statistics).
    var isCalibrated: Bool { calib != nil || !stats.isEmpty }

    func validate() throws {
        if method != nil && calib == nil && stats.isEmpty { throw ValidationError("--method needs --calib FILE or --stats FILE") }
        if calib != nil && !stats.isEmpty { throw ValidationError("use either --calib or --stats, not both") }
        if saveStats != nil && calib == nil { throw ValidationError("--save-stats needs --calib FILE") }
        if calibWindows < 1 { throw ValidationError("--calib-windows must be at least 1") }
        if ctx < 2 { throw ValidationError("--ctx must be at least 2") }
        if !(damp > 0 && damp.isFinite) { throw ValidationError("--damp must be a positive finite number (a fraction of the mean diagonal, e.g. 0.01)") }
    }

    var options: CalibrationOptions {
        var o = CalibrationOptions()
        o.method = method ?? .gptq
        o.sequential = sequential
        o.damping = damp
        o.actOrder = actOrder
        o.foldScales = foldScales
        return o
    }
}
