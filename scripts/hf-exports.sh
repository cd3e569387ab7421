#!/usr/bin/env bash
# Exports both fixtures as compressed-tensors W4A16 (int4), W8A16 (int8) and FP8 (fp8) into OUT
# (default out/hf), measures nemo-convert's own perplexity of each export (kjv-heldout.txt, ctx 256,
# every window), and prints the arguments of scripts/hf-check.py, which measures the same with
# transformers on a machine with PyTorch (docs/HF-EXPORTS.md, "Checked with transformers").
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release/nemo-convert
out=${1:-out/hf}
mkdir -p "$out"
args=()
for m in moe dense; do
  for r in int4 int8 fp8; do
    d="$out/$m-$r"
    rm -rf "$d"
    "$bin" convert "fixtures/nemotron-h-tiny-$m" -o "$d" --format compressed-tensors --recipe "$r" >/dev/null
    ppl=$("$bin" perplexity "$d" --text fixtures/text/kjv-heldout.txt --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ppl"])')
    echo "$m $r: nemo-convert perplexity $ppl"
    args+=("$m-$r=$d=$ppl")
  done
done
echo "python3 scripts/hf-check.py fixtures/text/kjv-heldout.txt 256 ${args[*]}"
