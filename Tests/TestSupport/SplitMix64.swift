/// SplitMix64 (Steele, Lea and Flood): the one seeded generator of the tests, so random weights,
/// fuzz cases and adversarial strings are the same on every run and machine, and a failure
/// reproduces from its seed. Distributions a test target needs (uniform floats, weight-like
/// matrices) are extensions in that target, next to the tests that depend on their exact values.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
