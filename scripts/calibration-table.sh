#!/usr/bin/env bash
# Perplexity on fixtures/text/kjv-heldout.txt of the int4 recipe (groups of 128) calibrated on
# fixtures/text/kjv-calib.txt with each method, for README's calibration table.
#   bash scripts/calibration-table.sh [RECIPE]
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=${1:-int4}
B=${NEMO_CONVERT:-.build/release/nemo-convert}
[ -n "${NEMO_CONVERT:-}" ] || swift build -c release --product nemo-convert >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "| model | recipe | method | bits/weight | calibration s | ppl | gap to bf16 closed |"
echo "|---|---|---|---|---|---|---|"
for m in nemotron-h-tiny-moe nemotron-h-tiny-dense; do
  bf16=$(python3 -c "import json; print(json.load(open('fixtures/$m/reference.json'))['ppl_kjv_heldout']['bf16'])")
  naive=$(python3 -c "import json; print(json.load(open('fixtures/$m/reference.json'))['ppl_kjv_heldout']['int4-g128'])")
  for method in none rtn mse awq gptq; do
    if [ $method = none ]; then
      $B convert fixtures/$m -o "$out/x.nemo" --recipe "$recipe" --json > "$out/c.json"
    else
      $B convert fixtures/$m -o "$out/x.nemo" --recipe "$recipe" --calib fixtures/text/kjv-calib.txt --method $method --json > "$out/c.json"
    fi
    $B perplexity "$out/x.nemo" --text fixtures/text/kjv-heldout.txt --json > "$out/p.json"
    python3 - "$m" "$recipe" "$method" "$bf16" "$naive" "$out/c.json" "$out/p.json" <<'PY'
import json, sys
m, recipe, method, bf16, naive = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
c = json.load(open(sys.argv[6])); p = json.load(open(sys.argv[7]))["ppl"]
secs = c["calibration"]["seconds"] if c.get("calibration") else 0
name = "(uncalibrated)" if method == "none" else method
print(f"| {m} | {recipe} | {name} | {c['bits_per_weight']:.3f} | {secs:.1f} | {p:.4f} | {(naive - p) / (naive - bf16) * 100:.0f}% |")
PY
  done
done
