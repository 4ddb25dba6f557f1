#!/usr/bin/env bash
# Creates the `berth` system user and its subordinate id ranges, which berthd cuts into one
# 65536-id range per instance for user namespaces (docs/threat-model.md). Idempotent: an
# existing user or range is left as it is. Called by deps.sh and by the tests that need it.
set -euo pipefail
START=${BERTH_SUBID_START:-1000000000}
COUNT=${BERTH_SUBID_COUNT:-1000000000}
if [ "$(id -u)" -ne 0 ]; then
  echo "berth_user.sh: run as root" >&2
  exit 1
fi
exec 9>/run/berth-user.lock
flock 9
if ! getent passwd berth >/dev/null; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin berth
fi
for f in /etc/subuid /etc/subgid; do
  touch "$f"
  if ! grep -q '^berth:' "$f"; then
    echo "berth:${START}:${COUNT}" >>"$f"
  fi
done
