#!/usr/bin/env bash
# verify's table for every built-in recipe on both fixture models: each model is converted with
# the recipe, then `nemo-convert verify` compares the packed file against the original on
# fixtures/text/kjv-heldout.txt (ctx 256, every window). Prints a Markdown table.
#
# Environment: BIN (default .build/release/nemo-convert, built if missing), RECIPES (default
# "int8 int4 fp8 mixed"), MODELS (default both fixtures), MAX_WINDOWS (default: all 198).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-.build/release/nemo-convert}
[ -x "$bin" ] || swift build -c release --product nemo-convert >/dev/null
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
limit=()
[ -n "${MAX_WINDOWS:-}" ] && limit=(--max-windows "$MAX_WINDOWS")
echo "| model | recipe | bits/weight | ppl bf16 | ppl quantized | ratio | KLD mean | KLD median | KLD p99 | KLD max | top-1 | rel error, last layer | worst expert |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for m in ${MODELS:-nemotron-h-tiny-moe nemotron-h-tiny-dense}; do
  for r in ${RECIPES:-int8 int4 fp8 mixed}; do
    "$bin" convert "fixtures/$m" -o "$out/p.nemo" --recipe "$r" --json >"$out/convert.json"
    # Exit code 3 (a threshold failed) cannot happen without thresholds; anything else stops the script.
    "$bin" verify "fixtures/$m" "$out/p.nemo" --text fixtures/text/kjv-heldout.txt "${limit[@]}" --json >"$out/verify.json"
    python3 - "$m" "$r" "$out/convert.json" "$out/verify.json" <<'EOF'
import json, sys
m, r, c, v = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
k = v["kld"]
worst = "–"
experts = [(e["rel_error"], l["index"], e["index"]) for l in v["layers"] for e in l.get("experts", []) if e["rel_error"] is not None]
if experts:
    e, li, ei = max(experts)
    worst = "%.4f (layer %d, #%d)" % (e, li, ei)
print("| %s | %s | %.3f | %.4f | %.4f | %.4f | %.6f | %.6f | %.5f | %.4f | %.2f%% | %.4f | %s |" % (
    m, r, c["bits_per_weight"], v["original"]["ppl"], v["quantized"]["ppl"], v["ppl_ratio"],
    k["mean"], k["median"], k["p99"], k["max"], 100 * v["top1_agreement"], v["layers"][-1]["rel_error"], worst))
EOF
  done
done
