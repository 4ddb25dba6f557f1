#!/usr/bin/env bash
# The main job until berthd lands: a busybox root filesystem becomes an image in the layer
# store (/var/lib/berth), the store prepares a copy-on-write root for an instance, and
# berth-runtime runs a container on it under berth-monitor. Run it again to replace the demo.
set -euo pipefail
STORE=${BERTH_STORE:-/var/lib/berth}
STATE=${BERTH_STATE:-/run/berth-runtime}
WORK=${BERTH_DEMO_DIR:-/var/lib/berth/demo}
RUNTIME=$(command -v berth-runtime || echo build/runtime/cli/berth-runtime)
IMAGE=$(command -v berth-image || echo build/runtime/store/berth-image)

# Replace an earlier demo.
"$RUNTIME" --root "$STATE" delete --force demo 2>/dev/null || true
"$IMAGE" --root "$STORE" umount "$WORK/bundle/rootfs" 2>/dev/null || true
"$IMAGE" --root "$STORE" snapshot-rm demo-root 2>/dev/null || true

mkdir -p "$WORK"
rootfs_src=$(mktemp -d)
trap 'rm -rf "$rootfs_src"' EXIT
mkdir -p "$rootfs_src"/{bin,proc,sys,dev,tmp,etc,root,www}
cp /bin/busybox "$rootfs_src/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$rootfs_src/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs_src/etc/passwd"
echo '<h1>Hello from a Berth container</h1>' >"$rootfs_src/www/index.html"
tar -C "$rootfs_src" -czf "$WORK/busybox-rootfs.tar.gz" .

echo "== import the demo image"
"$IMAGE" --root "$STORE" import "$WORK/busybox-rootfs.tar.gz" --format rootfs-tar --name demo-busybox
echo "== prepare a copy-on-write root for the instance and mount it"
"$IMAGE" --root "$STORE" prepare demo-busybox demo-root >/dev/null
mkdir -p "$WORK/bundle/rootfs"
"$IMAGE" --root "$STORE" mount demo-root "$WORK/bundle/rootfs"
rm -f "$WORK/bundle/config.json"
"$RUNTIME" spec --bundle "$WORK/bundle"
python3 - "$WORK/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["root"]["readonly"] = False
c["hostname"] = "berth-demo"
c["process"]["args"] = ["sh", "-c", "echo hello from $(hostname), pid $$; exec httpd -f -p 8080 -h /www"]
json.dump(c, open(p, "w"), indent=2)
PY
echo "== run the demo container"
"$RUNTIME" --root "$STATE" run --detach --bundle "$WORK/bundle" demo
sleep 0.2
"$RUNTIME" --root "$STATE" state demo
echo "== inside it"
"$RUNTIME" --root "$STATE" exec demo ps
echo "== its console log"
cat "$STATE/demo/console.log"
echo
echo "The demo container keeps running. Try:"
echo "  berth-runtime --root $STATE exec demo wget -qO- http://127.0.0.1:8080/"
echo "  berth-runtime --root $STATE list"
echo "  berth-runtime --root $STATE delete --force demo; berth-image --root $STORE umount $WORK/bundle/rootfs"
