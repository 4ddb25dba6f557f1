#!/usr/bin/env bash
# Berth's main job without OpenStack: berthd running as the host's daemon, a demo image in
# its store, and a demo instance answering on its own. Run it again to replace the demo.
# Stop berthd with: kill $(cat /run/berth/berthd.pid)   (instances keep running; they are
# re-attached when berthd starts again).
set -euo pipefail
cd "$(dirname "$0")/.."
CONF=${BERTH_CONF:-/etc/berth/berthd.conf}
BERTHD=$(command -v berthd || echo "$PWD/build/driver/server/berthd")
BERTH=$(command -v berth || echo "$PWD/build/driver/cli/berth")
URL=${BERTH_URL:-http://127.0.0.1:8780}
RUN_DIR=${BERTH_RUN_DIR:-/run/berth}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

mkdir -p /etc/berth "$RUN_DIR"
[ -f "$CONF" ] || cp etc/berthd.conf.example "$CONF"

# berthd, once: in its own session so it outlives this script; its log in /var/log/berthd.log.
if ! curl -fsS "$URL/healthz" >/dev/null 2>&1; then
  setsid "$BERTHD" --config "$CONF" >>/var/log/berthd.log 2>&1 </dev/null &
  echo $! >"$RUN_DIR/berthd.pid"
  for _ in $(seq 1 100); do
    curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
echo "== berthd is up (pid $(cat "$RUN_DIR/berthd.pid" 2>/dev/null || echo '?'), log /var/log/berthd.log)"
"$BERTH" --url "$URL" host

# The demo image: a busybox root filesystem with a web page, as a plain rootfs tarball.
rootfs="$WORK/rootfs"
mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,etc,root,www}
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo '<h1>Hello from a Berth instance</h1>' >"$rootfs/www/index.html"
tar -C "$rootfs" -cf "$WORK/demo-busybox.tar" .

# Replace an earlier demo instance and image.
for id in $("$BERTH" --url "$URL" --json ps | python3 -c '
import json, sys
for i in json.load(sys.stdin).get("instances", []):
    if i.get("name") == "demo": print(i["uuid"])'); do
  "$BERTH" --url "$URL" rm "$id" >/dev/null
done
"$BERTH" --url "$URL" rmi demo-busybox >/dev/null 2>&1 || true

echo "== import the demo image"
"$BERTH" --url "$URL" import --name demo-busybox --format rootfs-tar "$WORK/demo-busybox.tar"
echo "== spawn the demo instance (what Nova's spawn does)"
uuid=$("$BERTH" --url "$URL" run --name demo --memory-mb 64 --vcpus 1 \
  demo-busybox sh -c 'echo hello from $(hostname); exec httpd -f -p 8080 -h /www')
sleep 0.3
"$BERTH" --url "$URL" ps
echo "== its console"
"$BERTH" --url "$URL" logs "$uuid"
echo "== inside it: the web page, fetched over its own loopback"
"$BERTH" --url "$URL" exec "$uuid" wget -qO- http://127.0.0.1:8080/
echo
echo "berthd and the demo instance keep running. Try:"
echo "  berth ps; berth logs -f $uuid; berth stats $uuid; berth pause $uuid; berth stop $uuid"
echo "  curl -H \"X-Auth-Token: \$(cat /etc/berth/admin-token)\" $URL/v1/instances"
