#!/usr/bin/env bash
# The test command of README: builds and runs every test in release (numeric kernels are ~100x
# slower in debug; `swift test` still compiles with testing enabled). Non-zero exit on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
swift test -c release "$@"
