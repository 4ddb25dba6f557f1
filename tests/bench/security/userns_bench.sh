#!/usr/bin/env bash
# What user namespaces cost at spawn and what shifting ownership would cost at import.
#   [BENCH_DRIVERS="overlay vfs"] [IMAGE_TREE=dir] \
#   tests/bench/security/userns_bench.sh [BUILD_DIR] [N=20] [TREE=/usr/lib/python3]
# For each of overlay/vfs x userns on/off: a private berthd spawns and deletes N busybox
# instances one at a time; prints the server-side spawn mean (from /metrics) and the mean of
# the "mount" step of berthd's spawn log line (where the idmapped mounts, or vfs's shift,
# happen). Then the import-time fallback alone: lchown of every entry of a copy of TREE into
# a range, per file. About 1-2 minutes.
set -euo pipefail
BUILD=${1:-$(cd "$(dirname "$0")/../../.." && pwd)/build}; N=${2:-20}; TREE=${3:-/usr/lib/python3}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
"$ROOT/scripts/berth_user.sh"
D=$(mktemp -d /tmp/berth-test-bench-userns.XXXXXX)
chmod 755 "$D"
PID=
CG=
cleanup() {
  if [ -n "$PID" ]; then kill -9 "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  grep " $D" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  for c in /sys/fs/cgroup/*/berth-test-bench-userns-$$-*; do
    if [ -d "$c" ]; then rmdir "$c" 2>/dev/null || true; fi
  done
  rm -rf "$D"
}
trap cleanup EXIT
mkdir -p "$D/rootfs/bin" "$D/rootfs/etc" "$D/rootfs/tmp"
cp /bin/busybox "$D/rootfs/bin/"
for a in sh sleep; do ln -s busybox "$D/rootfs/bin/$a"; done
# IMAGE_TREE=/usr/lib/python3 puts a big tree into the image: the idmapped mount costs the
# same, vfs's per-instance copy and shift grow with it.
if [ -n "${IMAGE_TREE:-}" ]; then mkdir -p "$D/rootfs/big"; cp -a "$IMAGE_TREE" "$D/rootfs/big/"; fi
tar -C "$D/rootfs" -cf "$D/bb.tar" .

run() {  # driver userns
  local drv=$1 userns=$2 dir="$D/$1-$2"
  CG=berth-test-bench-userns-$$-$drv-$userns
  mkdir -p "$dir"
  cat >"$dir/berthd.conf" <<CONF
[DEFAULT]
state_dir = $dir/state
run_dir = $dir/run
log_level = info
[api]
port = 0
token_file = $dir/token
[storage]
driver = $drv
[instances]
cgroup_parent = $CG
[security]
userns = $userns
CONF
  "$BUILD/driver/server/berthd" --config "$dir/berthd.conf" >"$dir/out" 2>"$dir/err" &
  PID=$!
  for _ in $(seq 200); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.05; done
  local U H
  U=http://$(grep -o '127.0.0.1:[0-9]*' "$dir/out"); H="X-Auth-Token: $(cat "$dir/token")"
  curl -sf -H "$H" --data-binary @"$D/bb.tar" "$U/v1/images?name=bb&format=rootfs-tar" >/dev/null
  for _ in $(seq "$N"); do
    id=$(curl -sf -H "$H" -X POST "$U/v1/instances" \
      -d '{"image":"bb","flavor":{"vcpus":1,"memory_mb":32},"command":["sleep","1000"]}' |
      grep -o '"uuid":"[^"]*"' | cut -d'"' -f4) || { echo "spawn failed:"; tail -3 "$dir/err"; exit 1; }
    curl -sf -H "$H" -X DELETE "$U/v1/instances/$id" >/dev/null
  done
  local spawn mount
  spawn=$(curl -sf -H "$H" "$U/metrics" | awk '/^berth_spawn_seconds_(sum|count)/ {v[$1]=$2}
    END {printf "%.1f", 1000*v["berth_spawn_seconds_sum"]/v["berth_spawn_seconds_count"]}')
  mount=$(grep -o 'mount [0-9.]*' "$dir/err" | awk '{s+=$2; n++} END {printf "%.2f", s/n}')
  printf "%-8s userns=%-5s spawn mean %7s ms   mount step mean %6s ms   (N=%s)\n" \
    "$drv" "$userns" "$spawn" "$mount" "$N"
  kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=
  for c in /sys/fs/cgroup/*/"$CG"; do if [ -d "$c" ]; then rmdir "$c" 2>/dev/null || true; fi; done
}

echo "== spawn (busybox image, one layer, $(find "$D/rootfs" | wc -l) entries)"
for drv in ${BENCH_DRIVERS:-overlay vfs}; do
  for userns in false true; do run "$drv" "$userns"; done
done

echo "== import-time shift (the fallback without idmapped mounts): lchown of a copy of $TREE"
cp -a "$TREE" "$D/tree"
files=$(find "$D/tree" | wc -l)
s=$(date +%s.%N)
chown -R -h 1000000000:1000000000 "$D/tree"
e=$(date +%s.%N)
echo "$files entries: $(echo "($e - $s) * 1000" | bc -l | cut -c1-7) ms," \
  "$(echo "($e - $s) * 1000000 / $files" | bc -l | cut -c1-5) us per entry"
