#!/usr/bin/env bash
# The main job on the bundled fixture model: inspect it, convert it with a built-in recipe
# calibrated on the fixture's calibration text, check the packed file, verify it against the
# original, and see whether the real model fits consumer hardware under that recipe.
# Usage: scripts/demo.sh [RECIPE] [MODEL]   (METHOD=rtn|mse|awq|gptq, default gptq; METHOD=none skips calibration)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
recipe=${1:-int4}
model=${2:-fixtures/nemotron-h-tiny-moe}
method=${METHOD:-gptq}
swift build -c release --product nemo-convert 2>&1 | tail -1
bin=.build/release/nemo-convert
mkdir -p out
out=out/$(basename "$model")-$recipe.nemo
echo "== inspect $model"; $bin inspect "$model" | sed -n '1,10p'   # sed reads all input: no SIGPIPE under pipefail
if [ "$method" = none ]; then
  echo "== convert --recipe $recipe"; $bin convert "$model" -o "$out" --recipe "$recipe"
else
  echo "== convert --recipe $recipe --calib kjv-calib.txt --method $method"
  $bin convert "$model" -o "$out" --recipe "$recipe" --calib fixtures/text/kjv-calib.txt --method "$method"
fi
echo "== inspect --verify $out"; $bin inspect --verify "$out" | sed -n '1,12p'
echo "== verify original vs $recipe"; $bin verify "$model" "$out" --text fixtures/text/kjv-heldout.txt --plot out/$(basename "$model")-$recipe.svg
echo "== footprint of the real Nemotron-3-Nano-30B-A3B under $recipe"; $bin footprint --preset nemotron-3-nano-30b-a3b --recipe "$recipe" --context 32768
