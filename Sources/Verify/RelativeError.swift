/// ‖test − reference‖ / ‖reference‖ (Frobenius) accumulated over many chunks of rows, so one
/// figure covers every token of every batch. Sums are Double: a layer of a long run adds millions
/// of squares.
public struct RelativeError: Equatable, Sendable {
    public private(set) var squaredDifference = 0.0
    public private(set) var squaredReference = 0.0
    /// Rows (tokens) accumulated.
    public private(set) var rows = 0

    public init() {}

    public var value: Double {
        squaredReference > 0 ? (squaredDifference / squaredReference).squareRoot() : (squaredDifference > 0 ? .infinity : 0)
    }

    public mutating func add(reference r: UnsafePointer<Float>, test t: UnsafePointer<Float>, count n: Int, rows: Int) {
        // Float sums over blocks of 1024 values, each block folded into Double, so long runs don't
        // lose small terms and the inner loop stays in Float.
        var d2 = 0.0, r2 = 0.0
        var i = 0
        while i < n {
            let end = Swift.min(n, i + 1024)
            var a: Float = 0, b: Float = 0
            for j in i..<end {
                let rv = r[j], dv = t[j] - rv
                a += dv * dv; b += rv * rv
            }
            d2 += Double(a); r2 += Double(b)
            i = end
        }
        squaredDifference += d2
        squaredReference += r2
        self.rows += rows
    }
}
