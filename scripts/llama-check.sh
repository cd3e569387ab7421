#!/usr/bin/env bash
# Checks that llama.cpp loads and runs the GGUF files nemo-convert writes (not run by CI: it needs
# a llama.cpp build). For each fixture: convert to F32, BF16 and Q8_0/Q4_0 GGUF, run llama.cpp's
# llama-perplexity on the held-out text, and print its final estimate next to ours.
#
# usage: scripts/llama-check.sh LLAMA_CPP_BUILD_BIN_DIR [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: scripts/llama-check.sh LLAMA_CPP_BUILD_BIN_DIR [OUT_DIR]}
out=${2:-$(mktemp -d)}
nc=.build/release/nemo-convert
text=fixtures/text/kjv-heldout.txt
mkdir -p "$out"
for m in tiny-moe tiny-dense; do
  for r in f32 bf16 q8_0 q4_0; do
    f="$out/$m-$r.gguf"
    "$nc" convert "fixtures/nemotron-h-$m" -o "$f" --format gguf --recipe "$r" >/dev/null
    ours=$("$nc" perplexity "$f" --text "$text" --ctx 256 --json | python3 -c 'import sys, json; print("%.4f" % json.load(sys.stdin)["ppl"])')
    log="$out/$m-$r.llama-perplexity.log"
    # --no-repack: a -march=native build on a CPU with AMX dies of SIGILL in the repacked
    # kernels where the sandbox does not grant AMX state; the plain kernels compute the same model.
    if "$bin/llama-perplexity" -m "$f" -f "$text" -c 256 -b 256 -t "$(nproc)" --no-repack >"$log" 2>&1; then
      theirs=$(grep -o 'Final estimate: PPL = [0-9.]* +/- [0-9.]*' "$log" || echo "no final estimate")
    else
      rc=$?
      theirs="llama-perplexity failed (exit $rc): $(grep -m1 -i -E 'error|failed' "$log" || tail -1 "$log")"
    fi
    echo "$m $r: nemo-convert ppl $ours; llama.cpp: $theirs"
  done
done
