#!/usr/bin/env bash
# The test command of README: builds the CLI and every test in release (numeric kernels are
# ~100x slower in debug; `swift test` still compiles with testing enabled) and runs them all.
# Non-zero exit on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product nemo-convert   # the interrupted-convert test drives the real binary
swift test -c release "$@"
