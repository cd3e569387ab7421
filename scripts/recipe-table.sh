#!/usr/bin/env bash
# Measures every built-in recipe (and reference.json's naive baselines) on both fixture models:
# bits per weight of the packed file and perplexity on fixtures/text/kjv-heldout.txt.
# Prints a Markdown table; README's numbers come from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${NEMO_CONVERT:-.build/release/nemo-convert}
[ -x "$bin" ] || swift build -c release --product nemo-convert >/dev/null
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
echo "| model | recipe | bits/weight | size | ppl | Δ vs bf16 |"
echo "|---|---|---|---|---|---|"
for m in nemotron-h-tiny-moe nemotron-h-tiny-dense; do
  base=$($bin perplexity fixtures/$m --text fixtures/text/kjv-heldout.txt --json | field ppl)
  printf "| %s | (bf16 source) | 16 | %s | %.4f | |\n" "$m" "$(du -h fixtures/$m/model.safetensors | cut -f1)" "$base"
  for r in ${RECIPES:-int8 fp8 int4 mixed}; do
    j=$($bin convert fixtures/$m -o "$out/p.nemo" --recipe "$r" --json)
    bpw=$(echo "$j" | field bits_per_weight); size=$(echo "$j" | field output_bytes)
    ppl=$($bin perplexity "$out/p.nemo" --text fixtures/text/kjv-heldout.txt --json | field ppl)
    python3 -c "print('| $m | $(basename $r .json) | %.3f | %.1f MB | %.4f | %+.2f%% |' % ($bpw, $size/1e6, $ppl, ($ppl/$base-1)*100))"
  done
done
