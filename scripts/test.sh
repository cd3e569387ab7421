#!/usr/bin/env bash
# The test command of README: builds in release (numeric kernels are ~100x slower in debug) and
# runs every test. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --build-tests
swift test -c release --skip-build
