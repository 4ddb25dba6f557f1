#!/usr/bin/env bash
# Spawn/delete storm against a private berthd: N instances created and deleted by C
# parallel clients; prints the rate, spawn latency p50/p99 as berthd measured it (its log)
# and as the clients saw it (POST and DELETE), then GET /v1/instances throughput (wrk
# when installed), then PACED spawns one at a time 200 ms apart (as Nova sends them; the
# spawn p50 the issue asks for, from berthd's log, with how many claimed a shell), and a
# leak check (instance dirs, containers, mounts, cgroups, monitor processes) that fails
# the script when anything is left.
#   [SHELLS=1] [POOL=true] [PACED=20] tests/bench/server/spawn_bench.sh [BUILD_DIR] [N=50] [C=4]
# SHELLS: berthd's [instances] shells (0: every spawn makes its processes).
# POOL: berthd's [instances] rootfs_pool (false: every spawn makes its snapshot and mounts).
# BERTH_TIMING=1: also the p50 of some of the paced spawns' steps (berthd's PhaseTimer marks).
set -euo pipefail
BUILD=${1:-${BERTH_BUILD_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/build}}; N=${2:-50}; C=${3:-4}
if ! command -v wrk >/dev/null; then  # the list's req/s; as the other benches do, from Debian
  echo "installing wrk from Debian" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null ||
    echo "apt-get install wrk failed: the list is timed with curl" >&2
fi
D=$(mktemp -d /tmp/berth-test-bench-server.XXXXXX)
chmod 711 "$D"  # instances in user namespaces reach their root through it
CG=berth-test-bench-$$
cat >"$D/berthd.conf" <<CONF
[DEFAULT]
state_dir = $D/state
run_dir = $D/run
log_level = info
[api]
port = 0
token_file = $D/token
threads = 8
[instances]
cgroup_parent = $CG
shells = ${SHELLS:-1}
rootfs_pool = ${POOL:-true}
CONF
"$BUILD/driver/server/berthd" --config "$D/berthd.conf" >"$D/out" 2>"$D/err" &
PID=$!
cleanup() {
  kill -9 "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true
  for c in /sys/fs/cgroup/*/"$CG"; do [ -d "$c" ] && rmdir "$c" 2>/dev/null; done
  rm -rf "$D"
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q listening "$D/out" 2>/dev/null && break; sleep 0.05; done
U=http://$(grep -o '127.0.0.1:[0-9]*' "$D/out"); T=$(cat "$D/token"); H="X-Auth-Token: $T"
mkdir -p "$D/rootfs/bin"; cp /bin/busybox "$D/rootfs/bin/"; ln -s busybox "$D/rootfs/bin/sh"
ln -s busybox "$D/rootfs/bin/sleep"; tar -C "$D/rootfs" -cf "$D/bb.tar" .
curl -sf -H "$H" --data-binary @"$D/bb.tar" "$U/v1/images?name=bb" >/dev/null
# One Python process for all C clients (storm_client.py says why not curl).
/usr/bin/python3 "$(dirname "$0")/storm_client.py" "$U" "$T" "$N" "$C" "$D"
# p50 and p99 (nearest rank) of a column of milliseconds.
quantiles() { sort -g | awk '{v[NR]=$1} END {if (!NR) {print "no samples"; exit}
  printf "p50 %.1f ms  p99 %.1f ms  max %.1f ms  (n=%d)\n", v[int(NR*0.5+0.999)], v[int(NR*0.99+0.999)], v[NR], NR}'; }
echo "  berthd spawn (its log):  $(grep -ho 'spawned from [^ ]* in [0-9.]* ms' "$D/out" "$D/err" | awk '{print $5}' | quantiles)"
echo "  POST (client):           $(awk '{print 1000*$1}' "$D/post.times" | quantiles)"
echo "  DELETE (client):         $(awk '{print 1000*$1}' "$D/delete.times" | quantiles)"
curl -sf -H "$H" "$U/metrics" | grep 'berth_spawn_seconds_bucket' | tr '\n' ' '; echo
for _ in $(seq 10); do curl -sf -H "$H" -X POST "$U/v1/instances" \
  -d '{"image":"bb","flavor":{"vcpus":1,"memory_mb":32},"command":["sleep","1000"]}' >/dev/null; done
if command -v wrk >/dev/null; then
  wrk -t2 -c16 -d5s -H "$H" "$U/v1/instances" | grep -E 'Requests/sec|Latency'
else
  s=$(date +%s.%N); for _ in $(seq 200); do curl -sf -H "$H" "$U/v1/instances" >/dev/null; done
  e=$(date +%s.%N); echo "GET /v1/instances (10 instances, curl loop, no wrk): $(echo "200 / ($e - $s)" | bc -l | cut -c1-6) req/s"
fi
PACED=${PACED:-20}
for _ in $(seq "$PACED"); do curl -sf -H "$H" -X POST "$U/v1/instances" \
  -d '{"image":"bb","flavor":{"vcpus":1,"memory_mb":32},"command":["sleep","1000"]}' >/dev/null
  sleep 0.2; done
paced=$(grep -h 'spawned from' "$D/out" "$D/err" | tail -n "$PACED")
echo "  paced spawns (berthd's log, 200 ms apart, shells=${SHELLS:-1}): $(echo "$paced" |
  grep -o ' in [0-9.]* ms' | awk '{print $2}' | quantiles); from a shell: $(echo "$paced" |
  grep -c 'from a shell' || true) of $PACED, root made ahead: $(echo "$paced" |
  grep -c 'root made ahead' || true) of $PACED"
if [ -n "${BERTH_TIMING:-}" ]; then  # berthd's marks are on its stderr
  for mark in "spawn: rootfs" "launch: spec" "launch: create" "create: claim" \
      "create: monitor ready" "launch: start"; do
    echo "  paced spawns' \"$mark\" (BERTH_TIMING): $(grep -h "^$mark " "$D/err" |
      awk '{print $(NF-1)}' | tail -n "$PACED" | quantiles)"
  done
fi
for id in $(curl -sf -H "$H" "$U/v1/instances" | grep -o '"uuid":"[^"]*"' | cut -d'"' -f4); do
  curl -sf -H "$H" -X DELETE "$U/v1/instances/$id"; done
left=$(find "$D/state/instances" -mindepth 1 -maxdepth 1 | wc -l); mounts=$(grep -c "$D" /proc/self/mountinfo || true)
containers=$(find "$D/run" -name state.json 2>/dev/null | wc -l)
cgs=$(find /sys/fs/cgroup -maxdepth 3 -path "*$CG/*" -type d | wc -l)
monitors=$(pgrep -f "berth-monitor --state-dir $D/" | wc -l || true)
echo "leak check: instance dirs=$left containers=$containers mounts=$mounts cgroups=$cgs monitors=$monitors"
[ "$left$containers$mounts$cgs$monitors" = 00000 ] || { echo "leak check FAILED" >&2; exit 1; }
