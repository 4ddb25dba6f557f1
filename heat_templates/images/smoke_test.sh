#!/usr/bin/env bash
# Runs the five images' root filesystems together, without OpenStack, and checks the wiring
# the multi-tier template sets up: each tier in its own chroot, all in one private network
# namespace (so they reach each other on 127.0.0.1), each given its settings as a user-data
# file at /run/openstack/latest/user_data, exactly as the template writes them. Then: the
# front end answers, /api/status sees the database, the queue and a worker, and a job posted
# through the front end is done by the worker.
#
#   smoke_test.sh [DIR]     DIR: build.sh's --out with --rootfs-tar (default ./berth-images)
#
# Root. Everything happens in new mount, pid and network namespaces (unshare), so nothing
# outlives the test: no mounts, no processes, no traffic outside. About 10 s.
set -euo pipefail
dir=$(cd "${1:-berth-images}" && pwd)
for i in web api worker db mq; do
  [ -f "$dir/berth-$i.rootfs.tar" ] || {
    echo "smoke_test.sh: $dir/berth-$i.rootfs.tar missing: run build.sh --rootfs-tar" >&2
    exit 1
  }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT

for i in web api worker db mq; do
  mkdir -p "$work/$i/run/openstack/latest"
  tar -C "$work/$i" -xf "$dir/berth-$i.rootfs.tar"
done
password=smoke-$$-secret
cat >"$work/db/run/openstack/latest/user_data" <<EOF
#!/bin/sh
DB_PORT=7432
DB_PASSWORD=$password
EOF
cat >"$work/mq/run/openstack/latest/user_data" <<EOF
MQ_PORT=6379
EOF
for i in api worker; do
  cat >"$work/$i/run/openstack/latest/user_data" <<EOF
DB_HOST=127.0.0.1
DB_PORT=7432
DB_PASSWORD=$password
MQ_HOST=127.0.0.1
MQ_PORT=6379
EOF
done
cat >"$work/web/run/openstack/latest/user_data" <<EOF
WEB_TITLE=Smoke test
API_HOST=127.0.0.1
API_PORT=8080
EOF

# Inside the namespaces: start the tiers, then check from a sixth chroot (web's busybox).
cat >"$work/inside.sh" <<'EOF'
set -eu
work=$1
ip link set lo up
for i in db mq api worker web; do
  r=$work/$i
  mount -t proc proc "$r/proc"
  mount --rbind /dev "$r/dev"
  chroot "$r" /usr/local/bin/berth-entry "$i" >"$work/$i.log" 2>&1 &
done
get() { chroot "$work/web" timeout 5 wget -q -O - "$@"; }
fail() { echo "FAIL: $*"; for i in db mq api worker web; do echo "--- $i"; cat "$work/$i.log"; done; exit 1; }
for _ in $(seq 1 50); do
  status=$(get http://127.0.0.1/api/status 2>/dev/null) &&
    echo "$status" | grep -q '"workers": 1' && break
  sleep 0.2
done
get http://127.0.0.1/ | grep -q '<h1>Smoke test</h1>' || fail "front page"
echo "front page: ok"
echo "$status" | grep -q '"ok": true' || fail "status: $status"
echo "api status: $status" | tr -d '\n' | cut -c1-300; echo
job=$(chroot "$work/web" timeout 5 wget -q -O - --post-data 'hello from the smoke test' \
  http://127.0.0.1/api/jobs) || fail "post job"
id=$(echo "$job" | sed -n 's/.*"id": *\([0-9]*\).*/\1/p')
for _ in $(seq 1 50); do
  out=$(get "http://127.0.0.1/api/jobs/$id") && echo "$out" | grep -q '"done"' && break
  sleep 0.2
done
echo "$out" | grep -q '5 words' || fail "job $id: $out"
echo "job $id: done by a worker"
grep -q 'settings from /run/openstack/latest/user_data' "$work/api.log" || fail "api did not read its user data"
echo "PASS"
EOF
SECONDS=0
unshare --net --mount --pid --fork --mount-proc bash "$work/inside.sh" "$work"
echo "smoke test took ${SECONDS} s"
