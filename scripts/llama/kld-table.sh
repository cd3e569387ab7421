#!/usr/bin/env bash
# The GGUF table of README: nemo-convert's GPTQ-calibrated GGUFs against llama-quantize's with an
# importance matrix, both measured by llama.cpp itself (llama-perplexity --kl-divergence against
# the F32 GGUF's logits, fixtures/text/kjv-heldout.txt at -c 256). Calibration text for both tools:
# fixtures/text/kjv-calib.txt. Not run by CI: it needs a llama.cpp build (docs/GGUF.md says how).
#
# usage: scripts/llama/kld-table.sh LLAMA_BIN FIXTURE OUT_DIR [CHUNKS]
#   FIXTURE: tiny-moe or tiny-dense; CHUNKS limits llama-perplexity's windows (default: all)
# Prints one markdown row per file: tool, type, bytes, bits/weight, ppl, mean KLD, top-1.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:?usage: kld-table.sh LLAMA_BIN FIXTURE OUT_DIR [CHUNKS]}
fx=${2:?fixture}; out=${3:?out dir}; chunks=${4:-}
nc=.build/release/nemo-convert
model=fixtures/nemotron-h-$fx
heldout=fixtures/text/kjv-heldout.txt
calib=fixtures/text/kjv-calib.txt
threads=$(nproc)
mkdir -p "$out"
# --no-repack: a -march=native build dies of SIGILL in the repacked kernels where the sandbox
# does not grant AMX state; the plain kernels compute the same model.
common=(-c 256 -b 256 -t "$threads" --no-repack)
[ -n "$chunks" ] && common+=(--chunks "$chunks")

f32="$out/$fx-f32.gguf"
[ -f "$f32" ] || "$nc" convert "$model" -o "$f32" --format gguf --recipe f32 --json >/dev/null
base="$out/$fx-f32.kld"
if [ ! -f "$base" ]; then
  "$bin/llama-perplexity" -m "$f32" -f "$heldout" "${common[@]}" --kl-divergence-base "$base" >"$out/$fx-f32.ppl.log" 2>&1
fi
imatrix="$out/$fx-imatrix.gguf"
if [ ! -f "$imatrix" ]; then
  "$bin/llama-imatrix" -m "$f32" -f "$calib" -c 256 -b 256 -t "$threads" --no-repack -o "$imatrix" >"$out/$fx-imatrix.log" 2>&1
fi

params=$(python3 -c '
import sys, gguf
r = gguf.GGUFReader(sys.argv[1])
print(sum(int(t.n_elements) for t in r.tensors))' "$f32")

row() {  # tool type file
  local log="$3.kld.log"
  [ -f "$log" ] || "$bin/llama-perplexity" -m "$3" -f "$heldout" "${common[@]}" --kl-divergence-base "$base" --kl-divergence >"$log" 2>&1
  local bytes ppl kld top
  bytes=$(stat -c %s "$3")
  ppl=$(grep -m1 -E '^Mean PPL\(Q\)' "$log" | awk -F: '{print $2}' | awk '{print $1}')
  kld=$(grep -m1 -E '^Mean +KLD:' "$log" | awk -F: '{print $2}' | awk '{print $1}')
  top=$(grep -m1 -E '^Same top p:' "$log" | awk -F: '{print $2}' | awk '{print $1}')
  printf '| %s | %s | %s | %.3f | %s | %s | %s %% |\n' "$1" "$2" "$bytes" \
    "$(python3 -c "print($bytes * 8 / $params)")" "$ppl" "$kld" "$top"
}

echo "| tool | type | bytes | bits/weight | ppl | mean KLD | top-1 |"
echo "|---|---|---|---|---|---|---|"
for t in Q8_0 Q4_0 IQ4_NL MXFP4_MOE Q4_K_M; do
  f="$out/$fx-llama-$t.gguf"
  [ -f "$f" ] || "$bin/llama-quantize" --imatrix "$imatrix" "$f32" "$f" "$t" "$threads" >"$f.log" 2>&1
  row "llama-quantize + imatrix" "$t" "$f"
done
for r in ${RECIPES:-q8_0 q4_0 iq4_nl mxfp4-moe}; do
  f="$out/$fx-ours-$r.gguf"
  if [ ! -f "$f" ]; then
    "$nc" convert "$model" -o "$f" --format gguf --recipe "$r" --calib "$calib" --method gptq --json >"$f.json"
  fi
  row "nemo-convert gptq" "$r" "$f"
done
