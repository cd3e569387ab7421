#!/usr/bin/env bash
# FP4 against INT4 (issue 11): both fixture models × {int4 (groups of 128), int4 --group-size 32,
# mxfp4, nvfp4} × {uncalibrated, GPTQ on fixtures/text/kjv-calib.txt}; each pack is compared with
# its bf16 original by `nemo-convert verify` on fixtures/text/kjv-heldout.txt (ctx 256, every
# window). Prints README's Markdown table.
#
# Environment: BIN (default .build/release/nemo-convert, built if missing), MODELS (default both
# fixtures), CONFIGS (default "int4 int4-g32 mxfp4 nvfp4"), METHODS (default "none gptq").
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-.build/release/nemo-convert}
[ -x "$bin" ] || swift build -c release --product nemo-convert >/dev/null
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
echo "| model | recipe | calibration | bits/weight | ppl bf16 | ppl quantized | KLD mean | top-1 |"
echo "|---|---|---|---|---|---|---|---|"
for m in ${MODELS:-nemotron-h-tiny-moe nemotron-h-tiny-dense}; do
  for c in ${CONFIGS:-int4 int4-g32 mxfp4 nvfp4}; do
    case $c in
      int4-g32) args=(--recipe int4 --group-size 32) ;;
      *) args=(--recipe "$c") ;;
    esac
    for method in ${METHODS:-none gptq}; do
      calib=()
      [ "$method" = none ] || calib=(--calib fixtures/text/kjv-calib.txt --method "$method")
      "$bin" convert "fixtures/$m" -o "$out/p.nemo" "${args[@]}" "${calib[@]}" --json >"$out/convert.json"
      "$bin" verify "fixtures/$m" "$out/p.nemo" --text fixtures/text/kjv-heldout.txt --json >"$out/verify.json"
      python3 - "$m" "$c" "$method" "$out/convert.json" "$out/verify.json" <<'PY'
import json, sys
m, c, method = sys.argv[1:4]
conv, v = json.load(open(sys.argv[4])), json.load(open(sys.argv[5]))
name = "(uncalibrated)" if method == "none" else method
print("| %s | %s | %s | %.3f | %.4f | %.4f | %.6f | %.2f%% |" % (
    m, c, name, conv["bits_per_weight"], v["original"]["ppl"], v["quantized"]["ppl"], v["kld"]["mean"],
    100 * v["top1_agreement"]))
PY
    done
  done
done
