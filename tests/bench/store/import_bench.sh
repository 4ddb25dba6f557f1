#!/bin/bash
# Import throughput of berth-image: a ~100 MB two-layer docker-archive (uncompressed layers)
# and the same image as an OCI layout with gzip layers; several runs, median MB/s of the
# archive bytes. Peers (podman load, umoci unpack) are timed too when installed.
# Usage: import_bench.sh [BUILD_DIR] [RUNS]
set -euo pipefail
BUILD=${1:-$(dirname "$0")/../../../build-store}
RUNS=${2:-5}
BIN=$BUILD/runtime/store/berth-image
WORK=$(mktemp -d /tmp/berth-test-bench.XXXXXX)
trap 'umount -R "$WORK/mnt" 2>/dev/null || true; rm -rf "$WORK"' EXIT

mkdir -p "$WORK/l1/usr/lib" "$WORK/l2/srv/data" "$WORK/img"
# Layer 1: many small files; layer 2: a few big ones. Incompressible-ish content mixed with
# text, roughly like real images.
python3 - "$WORK" <<'PY'
import os, sys, random
w = sys.argv[1]
rnd = random.Random(1)
for i in range(3000):
    with open(f"{w}/l1/usr/lib/f{i}.so", "wb") as f:
        f.write(os.urandom(8000) + (b"text line %d\n" % i) * 1000)
for i in range(4):
    with open(f"{w}/l2/srv/data/big{i}", "wb") as f:
        f.write(os.urandom(10 << 20))
PY
tar -C "$WORK/l1" -cf "$WORK/img/l1.tar" .
tar -C "$WORK/l2" -cf "$WORK/img/l2.tar" .
python3 - "$WORK" <<'PY'
import hashlib, json, os, sys, gzip, shutil
w = sys.argv[1]
def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
    return h.hexdigest()
ids = [sha(f"{w}/img/l{i}.tar") for i in (1, 2)]
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in ids]}}).encode()
ch = hashlib.sha256(config).hexdigest()
open(f"{w}/img/{ch}.json", "wb").write(config)
json.dump([{"Config": f"{ch}.json", "RepoTags": ["bench:1"], "Layers": ["l1.tar", "l2.tar"]}],
          open(f"{w}/img/manifest.json", "w"))
oci = f"{w}/oci"; os.makedirs(f"{oci}/blobs/sha256")
layers = []
for i in (1, 2):
    gz = f"{w}/l{i}.tar.gz"
    with open(f"{w}/img/l{i}.tar", "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst)
    d = sha(gz); os.rename(gz, f"{oci}/blobs/sha256/{d}")
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": "sha256:" + d, "size": os.path.getsize(f"{oci}/blobs/sha256/{d}")})
open(f"{oci}/blobs/sha256/{ch}", "wb").write(config)
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": "sha256:" + ch, "size": len(config)},
                "layers": layers}).encode()
md = hashlib.sha256(m).hexdigest(); open(f"{oci}/blobs/sha256/{md}", "wb").write(m)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": "sha256:" + md, "size": len(m),
           "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, open(f"{oci}/index.json", "w"))
open(f"{oci}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
tar -C "$WORK/img" -cf "$WORK/docker.tar" .
SIZE_DOCKER=$(stat -c %s "$WORK/docker.tar")
SIZE_OCI=$(du -sb "$WORK/oci" | cut -f1)

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

bench() {  # name bytes command...
  local name=$1 bytes=$2; shift 2
  local times=()
  for _ in $(seq "$RUNS"); do
    rm -rf "$WORK/store"
    sync
    local t0 t1
    t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc)")
  done
  local med
  med=$(printf '%s\n' "${times[@]}" | median)
  printf '%-34s %8.3f s  %8.1f MB/s\n' "$name" "$med" "$(echo "$bytes / 1000000 / $med" | bc -l)"
}

echo "docker-archive: $((SIZE_DOCKER / 1000000)) MB, OCI gzip layout: $((SIZE_OCI / 1000000)) MB, $RUNS runs"
for drv in overlay vfs; do
  bench "berth-image $drv docker-archive" "$SIZE_DOCKER" "$BIN" --root "$WORK/store" --driver $drv import "$WORK/docker.tar"
  bench "berth-image $drv oci (gzip)" "$SIZE_DOCKER" "$BIN" --root "$WORK/store" --driver $drv import "$WORK/oci"
done
if command -v umoci >/dev/null; then
  bench "umoci unpack (gzip)" "$SIZE_DOCKER" sh -c "rm -rf '$WORK/bundle'; umoci unpack --image '$WORK/oci:bench' '$WORK/bundle'"
fi
if command -v podman >/dev/null; then
  bench "podman load docker-archive" "$SIZE_DOCKER" podman load -q -i "$WORK/docker.tar"
fi

# prepare-rootfs time: must not depend on the image size.
"$BIN" --root "$WORK/store" import "$WORK/docker.tar" >/dev/null
t0=$(date +%s%N)
for i in $(seq 20); do "$BIN" --root "$WORK/store" prepare bench:1 "c$i" >/dev/null; done
t1=$(date +%s%N)
echo "prepare (incl. process start): $(( (t1 - t0) / 20000 )) us per call"
