// swift-tools-version:6.0
import PackageDescription

// Numeric kernels are written as plain loops for LLVM to vectorize; the default x86-64 baseline
// (SSE2) leaves half the machine idle, and haswell (AVX2, FMA, F16C) runs on every x86 laptop and
// server sold in the last decade. See docs/PERFORMANCE.md.
//
// Language mode 5: the numeric kernels hand raw pointers to concurrentPerform workers, which
// Swift 6's Sendable checking rejects although each worker writes a disjoint range.
let fast: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", "haswell"], .when(platforms: [.linux])),
    .swiftLanguageMode(.v5),
]

let package = Package(
    name: "nemo-convert",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "nemo-convert", targets: ["nemo-convert"]),
        .library(name: "Formats", targets: ["Formats"]),
        .library(name: "Quantize", targets: ["Quantize"]),
        .library(name: "Model", targets: ["Model"]),
        .library(name: "Calibrate", targets: ["Calibrate"]),
        .library(name: "Verify", targets: ["Verify"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .target(name: "Formats", dependencies: ["CZstd"], swiftSettings: fast),
        .target(name: "Tokenizer", dependencies: ["Formats"], swiftSettings: fast),
        .target(name: "Quantize", dependencies: ["Formats", "COpenBLAS"], swiftSettings: fast),
        .target(name: "Model", dependencies: ["Formats", "Quantize", "COpenBLAS"], swiftSettings: fast),
        .target(name: "Calibrate", dependencies: ["Formats", "Quantize", "Model", "COpenBLAS"], swiftSettings: fast),
        .target(name: "Verify", dependencies: ["Formats", "Quantize", "Model"], swiftSettings: fast),
        // Throughput measurements for `nemo-convert bench`: only the CLI depends on this, so no
        // library carries benchmark code (docs/ARCHITECTURE.md).
        .target(name: "Benchmarks", dependencies: ["Formats", "Quantize", "Model", "Tokenizer", "COpenBLAS"],
                swiftSettings: fast),
        .executableTarget(name: "nemo-convert", dependencies: [
            "Formats", "Quantize", "Model", "Calibrate", "Verify", "Tokenizer", "Benchmarks",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: fast),
        // Shared by every test target and nothing else: fixture paths, scratch directories, the
        // seeded generator, and the runner of the built binary.
        .target(name: "TestSupport", dependencies: ["Formats", "Quantize"], path: "Tests/TestSupport", swiftSettings: fast),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "TestSupport"], swiftSettings: fast),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "Formats", "TestSupport"], swiftSettings: fast),
        .testTarget(name: "QuantizeTests", dependencies: ["Quantize", "Formats", "Benchmarks", "TestSupport"],
                    swiftSettings: fast),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Formats", "Quantize", "TestSupport"], swiftSettings: fast),
        .testTarget(name: "VerifyTests", dependencies: ["Verify", "Calibrate", "Model", "Formats", "Quantize", "Tokenizer",
                                                        "TestSupport"], exclude: ["FuzzCorpus"], swiftSettings: fast),
        // Drives the nemo-convert binary (scripts/test.sh builds it first); a missing binary fails.
        .testTarget(name: "CLITests", dependencies: ["Verify", "Calibrate", "Model", "Formats", "Quantize", "TestSupport"],
                    swiftSettings: fast),
    ]
)
