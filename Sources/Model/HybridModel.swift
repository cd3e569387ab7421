import Foundation
import Formats

/// The reference FP32 forward pass of a Nemotron-H model, run one layer at a time.
///
/// Layer streaming: every window of a batch goes through layer i before any goes through layer
/// i+1, so only one layer's weights are resident in FP32 (one expert's, inside a MoE layer), and
/// the batch's activations are the only other large memory. Weights come from a `WeightProvider`,
/// converted (or dequantized) when their layer runs.
public final class HybridModel: @unchecked Sendable {
    public let weights: WeightProvider
    public let config: ModelConfig
    public let scratch = Scratch()

    public init(weights: WeightProvider) {
        self.weights = weights
        self.config = weights.config
    }

    /// Residual stream of a batch: [rows, hidden].
    public func embed(_ tokens: [Int32], batch: Batch, into x: FloatBuffer) throws {
        precondition(tokens.count == batch.rows)
        x.resize(batch.rows * config.hiddenSize)
        try tokens.withUnsafeBufferPointer { try weights.embeddingRows($0, into: x.pointer) }
    }

    /// h ← h + mixer(RMSNorm(h)) for layer `l`, over every row of the batch.
    public func runLayer(_ l: Int, _ x: FloatBuffer, batch: Batch, observer: ForwardObserver? = nil) throws {
        let h = config.hiddenSize, rows = batch.rows
        let normW = scratch.buffer("layer.norm", h)
        try weights.load(.layerNorm, layer: l, expert: nil, into: normW.pointer)
        let u = scratch.buffer("layer.u", rows * h)
        Kernels.rmsNorm(x.pointer, rows: rows, cols: h, weight: normW.pointer, eps: config.normEps, into: u.pointer)
        let out = scratch.buffer("layer.out", rows * h)
        switch config.layers[l] {
        case .mamba:
            try Mamba2Mixer(dims: config.mamba!, hidden: h, eps: config.normEps, layer: l)
                .forward(u.pointer, batch: batch, weights: weights, scratch: scratch, observer: observer, into: out.pointer)
        case .attention:
            try AttentionMixer(dims: config.attention!, hidden: h, layer: l)
                .forward(u.pointer, batch: batch, weights: weights, scratch: scratch, observer: observer, into: out.pointer)
        case .mlp:
            try MLPMixer(dims: config.mlp!, hidden: h, layer: l)
                .forward(u.pointer, batch: batch, weights: weights, scratch: scratch, observer: observer, into: out.pointer)
        case .moe:
            try MoEMixer(dims: config.moe!, hidden: h, layer: l)
                .forward(u.pointer, batch: batch, weights: weights, scratch: scratch, observer: observer, into: out.pointer)
        }
        Kernels.add(out.pointer, into: x.pointer, count: rows * h)
        observer?.blockOutput(layer: l, hidden: x.pointer, rows: rows, width: h)
    }

    /// Final RMSNorm in place.
    public func finalNorm(_ x: FloatBuffer, batch: Batch) throws {
        let h = config.hiddenSize
        let w = scratch.buffer("final.norm", h)
        try weights.load(.finalNorm, layer: nil, expert: nil, into: w.pointer)
        Kernels.rmsNorm(x.pointer, rows: batch.rows, cols: h, weight: w.pointer, eps: config.normEps, into: x.pointer)
    }

    /// Loads lm_head once for a sequence of `logits` calls.
    public func loadHead() throws -> FloatBuffer {
        let b = FloatBuffer(count: config.vocabSize * config.hiddenSize)
        try weights.load(.lmHead, layer: nil, expert: nil, into: b.pointer)
        return b
    }

    /// logits[rows, vocab] = normed x[rows] · lm_headᵀ.
    public func logits(_ x: UnsafePointer<Float>, rows: Int, head: FloatBuffer, into out: UnsafeMutablePointer<Float>) {
        Linear.forward(x, rows: rows, in: config.hiddenSize, weight: head.pointer, out: config.vocabSize, into: out)
    }

    /// Whole forward pass of a batch, returning the normed final hidden states (layer-streamed).
    public func hiddenStates(_ tokens: [Int32], batch: Batch, observer: ForwardObserver? = nil,
                             progress: ((Int) -> Void)? = nil) throws -> FloatBuffer {
        let x = FloatBuffer(count: batch.rows * config.hiddenSize)
        try embed(tokens, batch: batch, into: x)
        for l in 0..<config.layers.count {
            try runLayer(l, x, batch: batch, observer: observer)
            progress?(l)
        }
        try finalNorm(x, batch: batch)
        return x
    }
}
