#!/usr/bin/env bash
# The whole default test suite: installs what is missing (Debian packages only), builds
# with -Werror, checks formatting, runs every unit and integration test (integration tests
# need root: real namespaces, mounts, cgroups), then checks nothing was left behind.
# Takes about 15 minutes on a 2-core machine from a clean clone (a third of it the build).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: run as root (integration tests create namespaces, mounts and cgroups)" >&2
  exit 1
fi

./scripts/deps.sh
./scripts/build.sh
./scripts/format_check.sh

BUILD_DIR=${BERTH_BUILD_DIR:-build}
status=0
# Unit tests in parallel; integration tests one at a time (they share the host's cgroups).
ctest --test-dir "$BUILD_DIR" -L unit -j2 --output-on-failure --timeout 300 || status=1
ctest --test-dir "$BUILD_DIR" -L integration --output-on-failure --timeout 240 || status=1
# The escape suite's table (attempt, what stopped it, inside, host), from its test's output.
awk '/^attempt +mechanism that stopped it/,/^\[/' "$BUILD_DIR/Testing/Temporary/LastTest.log" 2>/dev/null |
  grep -v '^\[' || true
# The Nova driver against Debian's nova package and a real berthd (Debian's python3, not
# another python3 earlier on PATH).
BERTH_BUILD_DIR="$PWD/$BUILD_DIR" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python || status=1
if ! ./scripts/leak_check.sh; then
  status=1
  ./scripts/sweep_test_leftovers.sh
fi
exit $status
