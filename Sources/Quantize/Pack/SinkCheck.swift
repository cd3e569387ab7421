import Formats

/// Checks plans against what a `TensorSink` stores (`SinkRules`) before a byte is written, so a
/// recipe a format cannot hold fails at once with every offender named, not midway with a
/// half-written temporary file. `convert --dry-run` prints the same list.
public enum SinkCheck {
    /// One line per tensor the sink cannot store, naming the tensor and why.
    public static func violations(_ plans: [(BoundTensor, TensorPlan)], rules: SinkRules) -> [String] {
        var out: [String] = []
        for (t, plan) in plans {
            var why: [String] = []
            let schemes = plan.segments.map(\.scheme)
            if !rules.mixedSchemesPerTensor, Set(schemes).count > 1 {
                why.append("mixes schemes across its rows (\(plan.segments.map { "\($0.name): \($0.scheme)" }.joined(separator: ", "))); a \(rules.format) stores one per tensor")
            }
            if let allowed = rules.schemes {
                for s in Set(schemes.map(\.description)).sorted() where !allowed.contains(s) {
                    why.append("scheme \(s) is not one a \(rules.format) stores (\(allowed.sorted().joined(separator: ", ")))")
                }
            }
            if let allowed = rules.scaleElements {
                for s in Set(schemes) {
                    let specs = s.codec.sections(rows: 1, cols: plan.cols, rowBlocks: 1).filter { $0.name != "codes" }
                    for e in Set(specs.map(\.element.rawValue)).sorted() where !allowed.contains(e) {
                        why.append("scheme \(s) has \(e) scales; a \(rules.format) stores \(allowed.sorted().joined(separator: ", ")) scales")
                    }
                }
            }
            if let check = rules.tensorCheck { why += check(t.sinkTensor(plan)) }
            if !why.isEmpty { out.append("\(t.name): " + why.joined(separator: "; ")) }
        }
        return out
    }

    /// Throws `SinkMismatch` listing the violations, if any.
    public static func require(_ plans: [(BoundTensor, TensorPlan)], fit sink: TensorSink) throws {
        let v = violations(plans, rules: sink.rules)
        if !v.isEmpty { throw SinkMismatch(format: sink.rules.format, violations: v) }
    }
}

extension BoundTensor {
    /// The entry the converter opens for this tensor in a sink.
    public func sinkTensor(_ plan: TensorPlan) -> SinkTensor {
        SinkTensor(name: name, role: role, layer: layer, expert: expert, shape: data.shape,
                   scheme: plan.summary, segments: plan.segments.map { ($0.name, $0.scheme.description) },
                   sourceDType: data.dtype)
    }
}

/// A recipe asks for what the chosen output format cannot store: the choice of recipe and
/// format is the problem, not the input files (the CLI exits 64).
public struct SinkMismatch: Error, CustomStringConvertible, Sendable {
    public let format: String
    public let violations: [String]
    public init(format: String, violations: [String]) { self.format = format; self.violations = violations }
    public var description: String {
        "the plan does not fit a \(format) (\(violations.count) tensor(s)): " + violations.prefix(20).joined(separator: "; ")
            + (violations.count > 20 ? "; …" : "") + " (`convert --dry-run` lists them all)"
    }
}
