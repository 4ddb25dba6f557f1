#!/usr/bin/env bash
# Installs what Berth needs (Debian packages only), builds it, installs the binaries
# under /usr/local, and runs the main job: a demo image imported into the layer store
# and a demo container started from it (no OpenStack needed).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root" >&2
  exit 1
fi
./scripts/deps.sh
./scripts/build.sh
cmake --install build --prefix /usr/local >/dev/null
echo "installed: $(command -v berth-runtime) $(command -v berth-image)"
exec ./scripts/demo.sh
