#!/bin/sh
# Starts berth-monitor supervising a `sleep` and prints its memory (PSS) in KiB.
# Usage: monitor_pss.sh [path/to/berth-monitor]   (default: build/runtime/monitor/berth-monitor)
set -eu
monitor=${1:-${BERTH_BUILD_DIR:-build}/runtime/monitor/berth-monitor}
state=$(mktemp -d /tmp/berth-test-pss.XXXXXX)
# The shell forks the init (sleep) and then becomes the monitor, which is the creator's
# pattern of protocol.h: the monitor is the init's parent.
sh -c 'sleep 600 & exec "$0" --state-dir "$1" --init-pid $! --start-fd 3 --exec-err-fd 4 --ready-fd 5' \
  "$monitor" "$state" 3>/dev/null 4</dev/null 5>"$state/ready" &
pid=$!
cleanup() {
  # The init first: the monitor reaps it and exits by itself.
  [ -n "${init:-}" ] && kill -9 "$init" 2>/dev/null || true
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.01; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT
i=0
while [ "$(cat "$state/ready" 2>/dev/null)" != "ok" ]; do
  i=$((i + 1)); [ $i -lt 200 ] || { echo "monitor did not get ready" >&2; exit 1; }
  sleep 0.01
done
init=$(cat /proc/$pid/task/$pid/children)
# Let it settle, then ask it one question so the request path's pages count too.
python3 - "$state/monitor.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sys.argv[1])
s.send(b"state"); print("state reply:", s.recv(4096).decode())
PY
sleep 0.2
awk -v init="$init" '/^Pss:/ {pss=$2} /^Rss:/ {rss=$2} /^Private_Dirty:/ {d=$2}
  END {printf "berth-monitor PSS %d KiB (RSS %d KiB, private dirty %d KiB)\n", pss, rss, d}' \
  /proc/$pid/smaps_rollup
