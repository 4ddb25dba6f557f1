#!/usr/bin/env bash
# Configures and builds Berth into build/ (or $BERTH_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BERTH_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BERTH_BUILD_TYPE:-RelWithDebInfo} \
  -DBERTH_WERROR=ON >/dev/null
ninja -C "$BUILD_DIR" "$@"
