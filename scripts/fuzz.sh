#!/usr/bin/env bash
# The long fuzz run (CI runs the same fuzzers at scale 1 as part of the tests):
#   NEMO_FUZZ_SCALE=50 bash scripts/fuzz.sh        # 50× the cases of CI: ~15,000 pack headers,
#                                                  # 75,000 statistics files, recipes, tokenizers
# and the safetensors / config.json / shard-index fuzzers of FormatsTests once.
# Each case's input is saved before it runs; when a reader crashes, the input of the case that
# crashed is copied into Tests/VerifyTests/FuzzCorpus/<reader>/ so every later run replays it.
set -uo pipefail
cd "$(dirname "$0")/.."
# Builds the test bundle (a filter that matches nothing runs no test).
swift test -c release --filter "ReaderFuzzTests/none" >/dev/null 2>&1 || true
export NEMO_FUZZ_SCALE="${NEMO_FUZZ_SCALE:-50}"
save="$(mktemp -d)"
trap 'rm -rf "$save"' EXIT
export NEMO_FUZZ_SAVE="$save"
status=0
for t in testMutatedPackedHeadersAreReadInFullOrRefusedByName testMutatedStatisticsFilesAreCheckedOrRefusedByName \
         testMutatedRecipesPlanOrAreRefusedByName testMutatedTokenizersEncodeOrAreRefusedByName; do
  rm -f "$save"/*.last
  swift test -c release --skip-build --filter "ReaderFuzzTests/$t" > "$save/log" 2>&1
  rc=$?
  grep -a -E "error|passed|failed" "$save/log" | tail -n 5
  if [ "$rc" != 0 ]; then
    status=1
    for f in "$save"/*.last; do
      [ -e "$f" ] || continue
      reader="$(basename "$f" .last)"
      ext=bin; [ "$reader" = packed ] && ext=json
      dest="Tests/VerifyTests/FuzzCorpus/$reader/crash-$(date +%Y%m%d-%H%M%S).$ext"
      cp "$f" "$dest"
      echo "fuzz: $t failed; its last input is now $dest (rename it after what it does and commit it)"
    done
  fi
done
swift test -c release --skip-build --filter "FormatsTests.FuzzTests" > "$save/log" 2>&1 || status=1
grep -a -E "Executed|error" "$save/log" | tail -n 3
exit $status
