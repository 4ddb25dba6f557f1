#!/bin/bash
# Builds a three-layer image from scratch with buildah (no network) and writes it as a
# docker-archive (buildah push), an OCI directory (buildah push) and an OCI archive
# (skopeo copy from the OCI directory), then unpacks the OCI directory with umoci for
# reference. Run inside a private mount namespace (unshare -m) by peer_tools_test.cc: every
# mount buildah makes dies with it, and its storage lives under WORK only.
# Usage: peer_build.sh WORK
set -euo pipefail
WORK=$1
export TMPDIR=$WORK/tmp BUILDAH_ISOLATION=chroot
mkdir -p "$TMPDIR" "$WORK/ctx/etc" "$WORK/ctx/opq/sub" "$WORK/ctx/bin" "$WORK/ctx/home/u"
# containers/image keeps a blob-info cache under /var/lib/containers/cache: hide the host's.
if [ -d /var/lib/containers/cache ]; then mount -t tmpfs berth-test-cache /var/lib/containers/cache; fi
BA=(buildah --root "$WORK/root" --runroot "$WORK/runroot" --storage-driver "${DRIVER:-overlay}")

# Layer 1: files, a setuid binary, a hardlink, an xattr, owners, symlinks, a dir to make opaque.
cd "$WORK/ctx"
echo hello > etc/hello
echo "root:x:0:0" > etc/passwd
echo a > opq/a
echo b > opq/sub/b
printf '#!/bin/sh\necho tool\n' > bin/tool
chmod 4755 bin/tool
echo secret > home/u/file
chmod 0600 home/u/file
c=$("${BA[@]}" from scratch)
"${BA[@]}" copy "$c" . / >/dev/null
m=$("${BA[@]}" mount "$c")
ln "$m/bin/tool" "$m/bin/tool-hardlink"
ln -s /etc/hello "$m/bin/abs-link"
ln -s ../etc/passwd "$m/bin/rel-link"
chown -R 1000:1000 "$m/home/u"
python3 -c "import os,sys; os.setxattr(sys.argv[1], 'user.color', b'blue')" "$m/etc/hello"
"${BA[@]}" umount "$c" >/dev/null
"${BA[@]}" commit -q "$c" berth-peer-l1 >/dev/null
"${BA[@]}" rm "$c" >/dev/null

# Layer 2: change a file, delete one, make opq opaque (rm -rf + mkdir), add files.
c=$("${BA[@]}" from berth-peer-l1)
m=$("${BA[@]}" mount "$c")
echo changed > "$m/etc/hello"
rm "$m/etc/passwd"
rm -rf "$m/opq"
mkdir "$m/opq"
echo c > "$m/opq/c"
mkdir -p "$m/var/lib/app"
head -c 200000 /dev/urandom > "$m/var/lib/app/data"
"${BA[@]}" umount "$c" >/dev/null
"${BA[@]}" commit -q "$c" berth-peer-l2 >/dev/null
"${BA[@]}" rm "$c" >/dev/null

# Layer 3: metadata-only change, a deletion of a layer-2 file, a new hardlink pair.
c=$("${BA[@]}" from berth-peer-l2)
m=$("${BA[@]}" mount "$c")
chmod 0700 "$m/var/lib/app"
rm "$m/opq/c"
echo twin > "$m/etc/twin"
ln "$m/etc/twin" "$m/etc/twin2"
"${BA[@]}" umount "$c" >/dev/null
"${BA[@]}" commit -q "$c" berth-peer:1 >/dev/null
"${BA[@]}" rm "$c" >/dev/null

"${BA[@]}" push -q berth-peer:1 "docker-archive:$WORK/image-docker.tar:berth-peer:1"
"${BA[@]}" push -q berth-peer:1 "oci:$WORK/image-oci:berth-peer"
skopeo copy -q "oci:$WORK/image-oci:berth-peer" "oci-archive:$WORK/image-oci.tar:berth-peer"
umoci unpack --image "$WORK/image-oci:berth-peer" "$WORK/umoci-bundle" >/dev/null
"${BA[@]}" rmi -a -f >/dev/null 2>&1 || true
