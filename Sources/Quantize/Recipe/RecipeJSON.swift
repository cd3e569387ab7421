import Formats

extension Recipe {
    /// Reads a recipe file (see `Recipe` for the form). Unknown keys are errors: a misspelt
    /// "shceme" must not silently quantize a tensor the user meant to protect.
    public init(json: JSONValue, file: String) throws {
        func bad(_ m: String) -> RecipeError { RecipeError("\(file): \(m)") }
        guard let o = json.objectValue else { throw bad("a recipe is a JSON object") }
        let known: Set<String> = ["name", "default", "rules", "per_head_scales", "out_proj_group_by_head", "whole_in_proj", "description",
                                  "keep_mamba_before_attention", "kv_cache"]
        for k in o.keys where !known.contains(k) { throw bad("unknown key '\(k)'") }
        let name = o["name"]?.stringValue ?? file
        guard let ds = o["default"]?.stringValue else { throw bad("missing 'default' scheme") }
        guard let d = QuantScheme(ds) else { throw bad("unknown default scheme '\(ds)'") }
        var rules: [Rule] = []
        for (i, rv) in (o["rules"]?.arrayValue ?? []).enumerated() {
            guard let r = rv.objectValue else { throw bad("rules[\(i)] is not an object") }
            let ruleKeys: Set<String> = ["role", "name", "layers", "segment", "scheme"]
            for k in r.keys where !ruleKeys.contains(k) { throw bad("rules[\(i)]: unknown key '\(k)'") }
            guard let sc = r["scheme"]?.stringValue else { throw bad("rules[\(i)] has no 'scheme'") }
            if sc != "keep" && QuantScheme(sc) == nil { throw bad("rules[\(i)]: unknown scheme '\(sc)'") }
            var role: TensorRole?
            if let rs = r["role"] {
                guard let s = rs.stringValue, let tr = TensorRole(rawValue: s) else {
                    throw bad("rules[\(i)]: unknown role \(rs); roles are " + TensorRole.allCases.map(\.rawValue).joined(separator: ", "))
                }
                role = tr
            }
            var layers: [Int]?
            if let lv = r["layers"] {
                guard let a = lv.arrayValue, a.allSatisfy({ $0.intValue != nil }) else { throw bad("rules[\(i)]: 'layers' must be an array of integers") }
                layers = a.map { $0.intValue! }
            }
            let seg = r["segment"]?.stringValue
            if let s = seg, !["z", "x", "B", "C", "dt"].contains(s) { throw bad("rules[\(i)]: segment must be z, x, B, C or dt") }
            if role == nil && r["name"] == nil && layers == nil && seg == nil { throw bad("rules[\(i)] matches nothing: give role, name, layers or segment") }
            rules.append(Rule(role: role, name: r["name"]?.stringValue, layers: layers, segment: seg, scheme: sc))
        }
        self.init(name: name, defaultScheme: d, rules: rules,
                  perHeadScales: o["per_head_scales"]?.boolValue ?? true,
                  outProjGroupByHead: o["out_proj_group_by_head"]?.boolValue ?? true)
        wholeInProj = o["whole_in_proj"]?.boolValue ?? false
        keepMambaBeforeAttention = o["keep_mamba_before_attention"]?.boolValue ?? false
        if let kv = o["kv_cache"], !kv.isNull {
            guard kv.stringValue == "fp8" else { throw bad("kv_cache must be \"fp8\" (or absent), got \(kv)") }
            kvCacheFP8 = true
        }
    }

    /// A built-in name (`int8`, `int4`, `fp8`, `mixed`) or a path to a recipe file.
    public static func load(_ nameOrPath: String, groupSize: Int? = nil) throws -> Recipe {
        if let g = groupSize, !(1...QuantScheme.maxInt4Group).contains(g) {
            throw RecipeError("group size \(g) is outside 1...\(QuantScheme.maxInt4Group)")
        }
        if let b = Builtin(rawValue: nameOrPath) { return builtin(b, groupSize: groupSize ?? 128) }
        if let g = GGUFRecipe(rawValue: nameOrPath) { return g.recipe }
        let bytes: [UInt8]
        do { bytes = try MappedFile.contents(of: nameOrPath) } catch {
            throw RecipeError("'\(nameOrPath)' is neither a built-in recipe (\((Builtin.allCases.map(\.rawValue) + GGUFRecipe.allCases.map(\.rawValue)).joined(separator: ", "))) nor a readable file: \(error)")
        }
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch { throw RecipeError("\(nameOrPath): not valid JSON: \(error)") }
        var r = try Recipe(json: json, file: nameOrPath)
        if let g = groupSize, let c = r.defaultScheme.int4 { r.defaultScheme = .int4(group: g, symmetric: c.symmetric) }
        return r
    }

    public var json: JSONValue {
        var rs: [JSONValue] = []
        for r in rules {
            var o = JSONObject()
            if let v = r.role { o["role"] = .string(v.rawValue) }
            if let v = r.name { o["name"] = .string(v) }
            if let v = r.layers { o["layers"] = .array(v.map { .int($0) }) }
            if let v = r.segment { o["segment"] = .string(v) }
            o["scheme"] = .string(r.scheme)
            rs.append(.object(o))
        }
        var j: JSONObject = ["name": .string(name), "default": .string(defaultScheme.description), "rules": .array(rs),
                             "per_head_scales": .bool(perHeadScales), "out_proj_group_by_head": .bool(outProjGroupByHead)]
        if wholeInProj { j["whole_in_proj"] = true }
        if keepMambaBeforeAttention { j["keep_mamba_before_attention"] = true }
        if kvCacheFP8 { j["kv_cache"] = "fp8" }
        return .object(j)
    }
}
