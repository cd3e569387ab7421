#!/usr/bin/env bash
# Installs the system libraries the build links against (Debian/Ubuntu), only if missing.
set -euo pipefail
if pkg-config --exists openblas libzstd 2>/dev/null; then exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "setup: install OpenBLAS and zstd development files (and pkg-config) with your package manager" >&2
  exit 1
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq libopenblas-dev libzstd-dev pkg-config >/dev/null
