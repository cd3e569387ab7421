import XCTest
import TestSupport

/// QuantizeTests' distributions over the shared SplitMix64.
extension SplitMix64 {
    /// The seeding these tests were written with (offset by the golden gamma), kept so every
    /// recorded case draws the same values as before.
    init(offsetSeed seed: UInt64) { self.init(seed: seed &+ 0x9E37_79B9_7F4A_7C15) }

    /// Uniform in [0, 1).
    mutating func uniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in [lo, hi).
    mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * uniform() }

    /// Approximately normal (Irwin–Hall of 4), scaled.
    mutating func normal(_ sigma: Float) -> Float {
        (uniform() + uniform() + uniform() + uniform() - 2) * sigma * 1.732
    }
}

/// A weight-like matrix with some outliers and one all-zero row.
func randomMatrix(rows: Int, cols: Int, seed: UInt64, zeroRow: Int? = nil) -> [Float] {
    var g = SplitMix64(offsetSeed: seed)
    var w = [Float](repeating: 0, count: rows * cols)
    for i in 0..<w.count {
        w[i] = g.normal(0.02)
        if g.next() % 101 == 0 { w[i] *= 10 }
    }
    if let z = zeroRow { for j in 0..<cols { w[z * cols + j] = 0 } }
    return w
}

func bitPatterns(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

/// Round-half-to-even the slow, obviously correct way.
func referenceRound(_ x: Float) -> Float { x.rounded(.toNearestOrEven) }
