#!/usr/bin/env bash
# Installs what Berth needs (Debian packages only), builds it, installs the binaries
# under /usr/local, and runs the main job (scripts/demo.sh): berthd as the host's daemon,
# a demo image in its store and a demo instance (no OpenStack needed).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root" >&2
  exit 1
fi
./scripts/deps.sh
./scripts/build.sh
cmake --install build --prefix /usr/local >/dev/null
echo "installed: $(command -v berthd) $(command -v berth) $(command -v berth-runtime) $(command -v berth-image)"
exec ./scripts/demo.sh
