#!/bin/bash
# Import throughput of berth-image: a ~100 MB two-layer docker-archive (uncompressed layers)
# and the same image as an OCI layout with gzip layers; several runs, median MB/s of the
# uncompressed image bytes, against podman load and umoci unpack (installed here with
# apt-get when missing; podman and umoci get private roots under the work dir), with
# ratios. Then prepare-rootfs time for a 10 MB and a 1 GB image, and commit of 100 MB of
# changes. Not part of the default suite; needs root.
# Usage: import_bench.sh [BUILD_DIR] [RUNS]
set -euo pipefail
BUILD=${1:-$(dirname "$0")/../../../build-store}
RUNS=${2:-5}
BIN=$BUILD/runtime/store/berth-image
WORK=$(mktemp -d /tmp/berth-test-bench.XXXXXX)
cleanup() {
  umount -R "$WORK/mnt" 2>/dev/null || true
  umount "$WORK/fs" 2>/dev/null || true
  if command -v podman >/dev/null; then podman "${PODMAN_ARGS[@]}" system reset -f >/dev/null 2>&1 || true; fi
  grep -o "$WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$WORK"
}
PODMAN_ARGS=(--root "$WORK/fs/podman-root" --runroot "$WORK/fs/podman-run" --storage-driver overlay)
trap cleanup EXIT

missing=()
command -v podman >/dev/null || missing+=(podman)
command -v umoci >/dev/null || missing+=(umoci)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

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
def layout(oci, compress):
  os.makedirs(f"{oci}/blobs/sha256")
  layers = []
  for i in (1, 2):
    gz = f"{w}/l{i}.blob"
    if compress:
        with open(f"{w}/img/l{i}.tar", "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst)
    else:
        shutil.copyfile(f"{w}/img/l{i}.tar", gz)
    d = sha(gz); os.rename(gz, f"{oci}/blobs/sha256/{d}")
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else ""),
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
layout(f"{w}/oci", True)
layout(f"{w}/oci-plain", False)
PY
tar -C "$WORK/img" -cf "$WORK/docker.tar" .
# podman load wants an OCI *archive* (a layout dir path is parsed as a reference).
tar -C "$WORK/oci" -cf "$WORK/oci-gzip.tar" .
mkdir -p "$WORK/tmp"
export TMPDIR=$WORK/tmp
SIZE_DOCKER=$(stat -c %s "$WORK/docker.tar")
SIZE_OCI=$(du -sb "$WORK/oci" | cut -f1)

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# Every run writes into a filesystem made for it (ext4 on a loop device): on a filesystem
# where thousands of files were just deleted, ext4's inode allocator spends most of an
# import in recently_deleted() (seen with perf), which measures the host's history, not
# the tool. Every tool gets the same treatment.
truncate -s 3G "$WORK/fs.img"
mkdir -p "$WORK/fs"
fresh_fs() {
  umount -R "$WORK/fs" 2>/dev/null || umount -l "$WORK/fs" 2>/dev/null || true
  mkfs.ext4 -q -F "$WORK/fs.img"
  mount -o loop "$WORK/fs.img" "$WORK/fs"
}
declare -A RATE LABEL BYTES CMD TIMES
KEYS=()
case_() {  # key label bytes command...
  local key=$1
  KEYS+=("$key")
  LABEL[$key]=$2
  BYTES[$key]=$3
  shift 3
  CMD[$key]=$(printf '%q ' "$@")
}
for drv in overlay vfs; do
  case_ "berth-$drv-plain" "berth-image $drv docker-archive" "$SIZE_DOCKER" "$BIN" --root "$WORK/fs/store" --driver $drv import "$WORK/docker.tar"
  case_ "berth-$drv-gzip" "berth-image $drv oci (gzip)" "$SIZE_DOCKER" "$BIN" --root "$WORK/fs/store" --driver $drv import "$WORK/oci"
done
case_ umoci-plain "umoci unpack oci (uncompressed)" "$SIZE_DOCKER" umoci unpack --image "$WORK/oci-plain:bench" "$WORK/fs/bundle"
case_ umoci-gzip "umoci unpack oci (gzip)" "$SIZE_DOCKER" umoci unpack --image "$WORK/oci:bench" "$WORK/fs/bundle"
case_ podman-plain "podman load docker-archive" "$SIZE_DOCKER" podman "${PODMAN_ARGS[@]}" load -q -i "$WORK/docker.tar"
case_ podman-gzip "podman load oci (gzip)" "$SIZE_DOCKER" podman "${PODMAN_ARGS[@]}" load -q -i "$WORK/oci-gzip.tar"

echo "image: $((SIZE_DOCKER / 1000000)) MB uncompressed (docker-archive), OCI gzip layout $((SIZE_OCI / 1000000)) MB; $RUNS runs, MB/s of uncompressed bytes"
# Round robin: one run of every case, RUNS times, so load from other work on the host hits
# every tool alike (a burst does not land on one tool's runs only).
for _ in $(seq "$RUNS"); do
  for key in "${KEYS[@]}"; do
    fresh_fs
    sync
    t0=$(date +%s.%N)
    eval "${CMD[$key]}" >/dev/null
    t1=$(date +%s.%N)
    TIMES[$key]+="$(echo "$t1 - $t0" | bc) "
    if command -v podman >/dev/null; then podman "${PODMAN_ARGS[@]}" system reset -f >/dev/null 2>&1 || true; fi
  done
done
umount "$WORK/fs"
for key in "${KEYS[@]}"; do
  med=$(printf '%s\n' ${TIMES[$key]} | median)
  RATE[$key]=$(echo "${BYTES[$key]} / 1000000 / $med" | bc -l)
  printf '%-40s %8.3f s  %8.1f MB/s\n' "${LABEL[$key]}" "$med" "${RATE[$key]}"
done

ratio() {  # berth-key peer-key-a peer-key-b
  local best=${RATE[$2]}
  if (( $(echo "${RATE[$3]} > $best" | bc -l) )); then best=${RATE[$3]}; fi
  printf '  %-28s %5.2fx the faster peer\n' "$1" "$(echo "${RATE[$1]} / $best" | bc -l)"
}
echo "ratios (targets: uncompressed >= 4x, gzip >= 1.5x):"
for drv in overlay vfs; do
  ratio "berth-$drv-plain" umoci-plain podman-plain
  ratio "berth-$drv-gzip" umoci-gzip podman-gzip
done

# prepare-rootfs: must not depend on the image size. Timed in-process would be lower; this
# includes starting berth-image (measured against `berth-image list` of an empty store).
prepare_time() {  # label image-tar
  rm -rf "$WORK/store"
  "$BIN" --root "$WORK/store" import "$2" --name p >/dev/null
  local t0 t1 base
  t0=$(date +%s%N)
  for i in $(seq 20); do
    BERTH_TIMING=1 "$BIN" --root "$WORK/store" prepare p "c$i" 2>>"$WORK/prepare-$1.log" >/dev/null
  done
  t1=$(date +%s%N)
  printf 'prepare %-8s %6d us per call (incl. process start)\n' "$1" $(( (t1 - t0) / 20000 ))
  # The snapshotter's Prepare alone, timed inside berth-image (target < 5 ms, flat in size).
  awk '/prepare/ {print $(NF-1)}' "$WORK/prepare-$1.log" | sort -n |
    awk -v l="$1" '{v[NR]=$1} END {printf "prepare %-8s %6.2f ms median in-process (%d calls)\n", l, v[int((NR+1)/2)], NR}'
}
mkroot() {  # dir MB
  mkdir -p "$1"
  python3 - "$1" "$2" <<'PY'
import os, sys
d, mb = sys.argv[1], int(sys.argv[2])
for i in range(max(1, mb // 8)):
    with open(f"{d}/f{i}", "wb") as f: f.write(os.urandom(min(mb, 8) << 20))
PY
  tar -C "$1" -cf "$1.tar" .
}
mkroot "$WORK/r10" 10
mkroot "$WORK/r1g" 1024
rm -rf "$WORK/r10" "$WORK/r1g"
prepare_time 10MB "$WORK/r10.tar"
prepare_time 1GB "$WORK/r1g.tar"
rm -f "$WORK/r1g.tar"

# commit of 100 MB of changes (overlay): write them through the mount, then time commit.
rm -rf "$WORK/store"
"$BIN" --root "$WORK/store" import "$WORK/r10.tar" --name base >/dev/null
"$BIN" --root "$WORK/store" prepare base cc >/dev/null
mkdir -p "$WORK/mnt"
"$BIN" --root "$WORK/store" mount cc "$WORK/mnt"
for i in $(seq 10); do head -c $((10 << 20)) /dev/urandom > "$WORK/mnt/new$i"; done
"$BIN" --root "$WORK/store" umount "$WORK/mnt"
sync
t0=$(date +%s.%N)
"$BIN" --root "$WORK/store" commit cc --name committed >/dev/null
t1=$(date +%s.%N)
printf 'commit of 100 MB of changes: %.3f s (%.0f MB/s)\n' "$(echo "$t1 - $t0" | bc)" "$(echo "104.86 / ($t1 - $t0)" | bc -l)"
