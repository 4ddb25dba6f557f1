#!/usr/bin/env bash
# GET /v1/instances throughput with 100 instances, against a private berthd on a free
# loopback port: creates 100 instances of a tiny sleep image, runs
# `wrk -t2 -c50 -d10s` with the token header, prints req/s, deletes everything.
#   tests/bench/server/list_bench.sh [BUILD_DIR] [N=100] [DURATION=10s]
set -euo pipefail
BUILD=${1:-${BERTH_BUILD_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/build}}; N=${2:-100}; DUR=${3:-10s}
if ! command -v wrk >/dev/null; then  # the peer tool, from Debian, as the other benches do
  echo "installing wrk from Debian" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null ||
    { echo "apt-get install wrk failed" >&2; exit 1; }
fi
D=$(mktemp -d /tmp/berth-test-bench-list.XXXXXX)
chmod 711 "$D"  # instances in user namespaces reach their root through it
CG=berth-test-bench-list-$$
cat >"$D/berthd.conf" <<CONF
[DEFAULT]
state_dir = $D/state
run_dir = $D/run
log_level = warn
[api]
port = 0
token_file = $D/token
[instances]
cgroup_parent = $CG
CONF
"$BUILD/driver/server/berthd" --config "$D/berthd.conf" >"$D/out" 2>"$D/err" &
PID=$!
U=; H=
cleanup() {
  if [ -n "$U" ]; then
    for id in $(curl -sf -H "$H" "$U/v1/instances" | grep -o '"uuid":"[^"]*"' | cut -d'"' -f4); do
      curl -sf -H "$H" -X DELETE "$U/v1/instances/$id" || true; done
  fi
  kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true
  for c in /sys/fs/cgroup/*/"$CG"; do [ -d "$c" ] && rmdir "$c" 2>/dev/null; done
  rm -rf "$D"
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q listening "$D/out" "$D/err" 2>/dev/null && break; sleep 0.05; done
U=http://$(grep -ho '127.0.0.1:[0-9]*' "$D/out" "$D/err" | head -1); T=$(cat "$D/token"); H="X-Auth-Token: $T"
mkdir -p "$D/rootfs/bin"; cp /bin/busybox "$D/rootfs/bin/"; ln -s busybox "$D/rootfs/bin/sleep"
tar -C "$D/rootfs" -cf "$D/img.tar" .
curl -sf -H "$H" --data-binary @"$D/img.tar" "$U/v1/images?name=sleep" >/dev/null
for _ in $(seq "$N"); do
  curl -sf -H "$H" -X POST "$U/v1/instances" \
    -d '{"image":"sleep","flavor":{"vcpus":1,"memory_mb":16},"command":["sleep","100000"]}' >/dev/null
done
echo "instances: $(curl -sf -H "$H" "$U/v1/instances" | grep -o '"uuid"' | wc -l)"
wrk -t2 -c50 -d"$DUR" -H "$H" "$U/v1/instances" | grep -E 'Requests/sec|Latency|Non-2xx|Socket'
curl -sf -H "$H" "$U/metrics" | grep -E '^berth_spawn_seconds_(bucket|sum|count)' | tr '\n' ' '; echo
