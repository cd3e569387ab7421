import XCTest
import Foundation
import Formats
import Quantize
@testable import Verify
import TestSupport

/// footprint against hand computations. Notation: INT4 g stores ⌈cols/2⌉ bytes of codes and
/// ⌈cols/g⌉ F32 scales per row; INT8 stores cols bytes and one F32 scale per row; "keep" tensors
/// stay in their BF16 source (2 B); A_log, D and the router are F32 (4 B).
final class FootprintTests: XCTestCase {
    func testPresetPatternsAndParameters() {
        // docs/nemotron-h.md §1.2: layers (M / - / * / E).
        let want: [ModelPreset: (Int, Int, Int, Int, Int)] = [
            .nemotronH8b: (52, 24, 24, 4, 0), .nemotronNano9bV2: (56, 27, 25, 4, 0),
            .nemotronNano12bV2: (62, 28, 28, 6, 0), .nemotron3Nano30bA3b: (52, 23, 0, 6, 23),
        ]
        for p in ModelPreset.allCases {
            let c = p.config, w = want[p]!
            XCTAssertEqual(c.layers.count, w.0, p.rawValue)
            XCTAssertEqual([c.count(.mamba), c.count(.mlp), c.count(.attention), c.count(.moe)], [w.1, w.2, w.3, w.4], p.rawValue)
        }
        // "Nemotron-3-Nano-30B-A3B is about 31.6B parameters, about 60 GB in BF16".
        let nano = try! WeightSizing(tensors: ModelPreset.nemotron3Nano30bA3b.tensors, recipe: nil,
                                     config: ModelPreset.nemotron3Nano30bA3b.config)
        XCTAssertEqual(nano.parameters, 31_577_940_288)
        XCTAssertEqual(Double(nano.bytes) / 1e9, 63.2, accuracy: 0.1)
        // "Nemotron-Nano-9B-v2 about 18 GB in BF16".
        let nine = try! WeightSizing(tensors: ModelPreset.nemotronNano9bV2.tensors, recipe: nil, config: ModelPreset.nemotronNano9bV2.config)
        XCTAssertEqual(Double(nine.bytes) / 1e9, 17.8, accuracy: 0.2)
    }

    /// Nemotron-3-Nano-30B-A3B under INT4 g128 with the default exclusions (what the built-in int4
    /// recipe was when this was written, spelled out so a retuned built-in doesn't move the hand
    /// computation): Mamba out_proj grouped by head_dim 64; in_proj dt rows, conv1d, norms and
    /// embedding kept BF16; A_log, D, router F32; lm_head INT8. H = 2688,
    /// V = 131072, I = 4096, G·N = 1024, Hm = 64:
    ///
    ///   embedding  BF16 131072 × 2688 × 2                                 =    704,643,072
    ///   lm_head    INT8 131072 × 2688 + 131072 × 4                        =    352,845,824
    ///   norm_f 2688 × 2 = 5,376; 52 layer norms × 5,376                   =        284,928
    ///   Mamba layer:
    ///     in_proj z,x,B,C: 10240 rows INT4 g128 (1344 B + 21 scales)      =     14,622,720
    ///     in_proj dt: 64 × 2688 × 2                                       =        344,064
    ///     conv1d 6144 × 4 × 2 + bias 6144 × 2                             =         61,440
    ///     A_log, D 2 × 64 × 4; dt_bias 64 × 2; gated norm 4096 × 2        =          8,832
    ///     out_proj [2688, 4096] INT4 g64: 2688 × (2048 + 64 × 4)          =      6,193,152
    ///     one layer                                                       =     21,230,208   × 23 = 488,294,784
    ///   attention layer: q [4096,2688] 4096 × (1344 + 84) = 5,849,088; k, v [256, 2688]
    ///     256 × 1428 = 365,568 each; o [2688, 4096] 2688 × (2048 + 128) = 5,849,088
    ///     one layer                                                       =     12,429,312   ×  6 =  74,575,872
    ///   MoE layer: router 128 × 2688 × 4 + bias 128 × 4                   =      1,376,768
    ///     expert up [1856, 2688] 1856 × (1344 + 84) = 2,650,368;
    ///     expert down [2688, 1856] 2688 × (928 + 15 × 4) = 2,655,744; × 128 experts = 679,182,336
    ///     shared up [3712, 2688] 3712 × 1428 = 5,300,736; down [2688, 3712] 2688 × (1856 + 116) = 5,300,736
    ///     one layer                                                       =    691,160,576   × 23 = 15,896,693,248
    ///   total                                                             = 17,517,337,728 bytes (16.31 GiB, 4.438 bits/param)
    ///
    /// KV cache at 128k context, BF16, batch 1: 6 attention layers × 2 (K, V) × 2 kv heads × 128
    /// × 131072 tokens × 2 B = 805,306,368 bytes (768 MiB).
    /// Mamba state: 23 layers × (conv 3 × 6144 × 4 = 73,728 + SSM 64 × 64 × 128 × 4 = 2,097,152) = 49,930,240.
    func testNemotron3NanoInt4At128k() throws {
        let p = ModelPreset.nemotron3Nano30bA3b
        let int4 = Recipe(name: "int4", defaultScheme: .int4(group: 128, symmetric: true))
        let w = try WeightSizing(tensors: p.tensors, recipe: int4, config: p.config)
        XCTAssertEqual(w.bytes, 17_517_337_728)
        XCTAssertEqual(w.byGroup[.routedExperts], 23 * 679_182_336)
        XCTAssertEqual(w.bitsPerParameter, 4.438, accuracy: 0.001)
        let fp = MemoryFootprint(config: p.config, weights: w, context: 131_072, batch: 1)
        XCTAssertEqual(fp.kvCacheBytes, 805_306_368)
        XCTAssertEqual(fp.convStateBytes, 23 * 73_728)
        XCTAssertEqual(fp.ssmStateBytes, 23 * 2_097_152)
        XCTAssertEqual(fp.mambaStateBytes, 49_930_240)
        // Activations: chunk 512; widest intermediate is Mamba's in_proj 10304 + conv 6144 + y 4096
        // = 20544 (MoE: 128 + 6 × 1856 + 3712 = 14976); 4 × (512 × (2 × 2688 + 20544) + 512 × 131072
        // + 131072) = 322,043,904.
        XCTAssertEqual(fp.activationBytes, 322_043_904)
        XCTAssertEqual(fp.totalBytes, 17_517_337_728 + 805_306_368 + 49_930_240 + 322_043_904)
        // 16.31 + 0.75 + 0.05 + 0.30 = 17.41 GiB against 1 GiB (GPU) / 4 GiB (RAM) reserves: fits 24
        // and 32 GB cards and 32/64 GB of RAM, not 16 GB of either.
        let fits = DeviceFit.all(fp.totalBytes).map { "\($0.device.name): \($0.fits)" }
        XCTAssertEqual(fits, ["GPU 8 GB: false", "GPU 12 GB: false", "GPU 16 GB: false", "GPU 24 GB: true", "GPU 32 GB: true",
                              "RAM 16 GB: false", "RAM 32 GB: true", "RAM 64 GB: true"])
        // Batch and dtype scale the state linearly.
        let fp8 = MemoryFootprint(config: p.config, weights: w, context: 131_072, batch: 2, kvDType: .fp8)
        XCTAssertEqual(fp8.kvCacheBytes, 805_306_368)
        XCTAssertEqual(fp8.mambaStateBytes, 2 * 49_930_240)
    }

    /// Nemotron-Nano-9B-v2 under INT8 per channel with the default exclusions (dt rows, conv1d,
    /// norms, embedding BF16; lm_head INT8), H = 4480, I = 10240, G·N = 1024, Hm = 128, MLP 15680:
    ///
    ///   embedding 131072 × 4480 × 2 = 1,174,405,120; lm_head 131072 × 4480 + 131072 × 4 = 587,726,848
    ///   norm_f 8,960 + 56 layer norms × 8,960 = 510,720
    ///   Mamba layer: in_proj 22528 rows × (4480 + 4) = 101,015,552 + dt 128 × 4480 × 2 = 1,146,880;
    ///     conv 12288 × 4 × 2 + 12288 × 2 = 122,880; A_log, D 2 × 512; dt_bias 256; norm 20,480;
    ///     out_proj 4480 × (10240 + 4) = 45,893,120  → 148,200,192 × 27 = 4,001,405,184
    ///   MLP layer: up 15680 × 4484 = 70,309,120; down 4480 × 15684 = 70,264,320 → 140,573,440 × 25 = 3,514,336,000
    ///   attention layer: q 5120 × 4484 = 22,958,080; k, v 1024 × 4484 = 4,591,616 each;
    ///     o 4480 × 5124 = 22,955,520 → 55,096,832 × 4 = 220,387,328
    ///   total 9,498,771,200 bytes
    ///
    /// KV at 128k, BF16: 4 layers × 2 × 8 kv heads × 128 × 131072 × 2 B = 2,147,483,648 (2 GiB).
    /// Mamba state: 27 × (3 × 12288 × 4 = 147,456 + 128 × 80 × 128 × 4 = 5,242,880) = 145,539,072.
    func testNemotronNano9bInt8At128k() throws {
        let p = ModelPreset.nemotronNano9bV2
        let w = try WeightSizing(tensors: p.tensors, recipe: Recipe(name: "int8", defaultScheme: .int8Channel), config: p.config)
        XCTAssertEqual(w.bytes, 9_498_771_200)
        let fp = MemoryFootprint(config: p.config, weights: w, context: 131_072, batch: 1)
        XCTAssertEqual(fp.kvCacheBytes, 2_147_483_648)
        XCTAssertEqual(fp.mambaStateBytes, 145_539_072)
    }

    /// For a packed file the weight bytes are its sections' decoded lengths, which must be what
    /// the recipe's plan predicts for the checkpoint it came from.
    func testPackedFileMatchesTheRecipePlan() throws {
        let dir = NSTemporaryDirectory() + "nemo-footprint-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for m in Fixtures.models {
            let map = try TensorMap(checkpoint: try Checkpoint(path: Fixtures.model(m)))
            for b in Recipe.Builtin.allCases {
                let out = dir + "/\(m)-\(b.rawValue).nemo"
                _ = try Converter(map: map, recipe: .builtin(b)).convert(to: out, metadata: ["model": configJSON(m)], blobs: [])
                let packed = WeightSizing(packed: try PackedFile(path: out))
                let planned = try WeightSizing(tensors: TensorEntry.checkpoint(map), recipe: .builtin(b), config: map.config)
                XCTAssertEqual(packed.bytes, planned.bytes, "\(m) \(b)")
                XCTAssertEqual(packed.parameters, planned.parameters)
                XCTAssertEqual(packed.byGroup, planned.byGroup)
                XCTAssertLessThanOrEqual(packed.fileBytes!, packed.bytes + 1 << 20)
            }
            // Without a recipe, a checkpoint's weights are its stored bytes.
            let src = try WeightSizing(tensors: TensorEntry.checkpoint(map), recipe: nil, config: map.config)
            XCTAssertEqual(src.bytes, map.tensors.reduce(0) { $0 + $1.data.byteCount })
        }
    }

    func configJSON(_ m: String) throws -> JSONValue {
        try JSONParser.parse(try MappedFile.contents(of: Fixtures.model(m) + "/config.json"))
    }
}
