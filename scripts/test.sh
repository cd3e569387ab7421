#!/usr/bin/env bash
# The test command of README: installs the system libraries if missing, builds the CLI and every
# test in release (numeric kernels are ~100x slower in debug; `swift test` still compiles with
# testing enabled) and runs them all. Non-zero exit on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -c "import safetensors" 2>/dev/null || python3 -m pip install -q safetensors numpy 2>/dev/null \
  || echo "note: python safetensors unavailable; the cross-check test will say it skipped"
python3 -c "import gguf" 2>/dev/null || python3 -m pip install -q "gguf==0.19.0" numpy 2>/dev/null \
  || echo "note: python gguf unavailable; the GGUF cross-check test will say it skipped"
swift build -c release --product nemo-convert   # the interrupted-convert test drives the real binary
swift test -c release "$@"
