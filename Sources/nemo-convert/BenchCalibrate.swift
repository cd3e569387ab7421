import ArgumentParser

struct BenchCalibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Calibration time per layer (in progress).")

    func run() throws { throw ValidationError("'calibrate' is not implemented yet") }
}
