#!/usr/bin/env bash
# The main job on the bundled fixture model: inspect it, convert it with a built-in recipe, and
# check what quantization cost in perplexity. Usage: scripts/demo.sh [RECIPE] [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
recipe=${1:-int4}
model=${2:-fixtures/nemotron-h-tiny-moe}
swift build -c release --product nemo-convert 2>&1 | tail -1
bin=.build/release/nemo-convert
mkdir -p out
out=out/$(basename "$model")-$recipe.nemo
echo "== inspect $model"; $bin inspect "$model" | sed -n '1,10p'   # sed reads all input: no SIGPIPE under pipefail
echo "== convert --recipe $recipe"; $bin convert "$model" -o "$out" --recipe "$recipe"
echo "== perplexity, original";  $bin perplexity "$model" --text fixtures/text/kjv-heldout.txt
echo "== perplexity, $recipe";   $bin perplexity "$out" --text fixtures/text/kjv-heldout.txt
