#!/usr/bin/env bash
# Builds the container images the Heat templates use, from Debian's own packages (their
# files extracted with dpkg-deb; no maintainer scripts run, nothing installed on this host).
#
#   build.sh [--out DIR] [--cache DIR] [--rootfs-tar] [IMAGE...]
#
# IMAGE: web api worker db mq (default: all five). Each becomes DIR/berth-IMAGE.tar, a
# docker-archive (Glance: --container-format docker --disk-format raw); --rootfs-tar also
# writes DIR/berth-IMAGE.rootfs.tar (Glance: --container-format bare --disk-format root-tar).
#
# Layers, bottom first (a layer is byte-identical in every image, so Berth stores it once):
#   base    busybox (static) as /usr/bin/*, merged /usr, /etc/passwd, berth-entry
#   libs    libc6 and the libraries every service links (libssl3, zlib1g, libcrypt1, ...)
#   nginx   nginx from Debian + berth-web                      -> berth-web
#   python  python3-minimal, libpython3.11-stdlib + the demo   -> berth-api, -worker, -db
#   redis   redis-server from Debian + berth-mq                -> berth-mq
#
# Needs: apt's package lists (apt-get update), python3-apt, dpkg-deb; root (the files keep
# their owners). Downloads ~30 MB of .debs into --cache once; a rebuild needs no network.
# With the .debs cached: ≈ 16 s of CPU (see heat_templates/README.md for figures).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${BERTH_IMAGES_OUT:-$PWD/berth-images}
cache=${BERTH_IMAGES_CACHE:-/var/cache/berth-images}
rootfs_tar=0
images=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift ;;
    --cache) cache=$2; shift ;;
    --rootfs-tar) rootfs_tar=1 ;;
    -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
    web | api | worker | db | mq) images+=("$1") ;;
    *) echo "build.sh: unknown argument $1 (want web, api, worker, db, mq or an option)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#images[@]} -gt 0 ] || images=(web api worker db mq)
python=/usr/bin/python3
tool="$python $here/berth_images.py"
start=$(date +%s)

# Maintainer-script machinery and data a container never uses.
exclude=debconf,debconf-2.0,perl-base,dpkg,adduser,passwd,init-system-helpers,lsb-base
exclude+=,sysvinit-utils,ucf,logrotate,iproute2,tzdata,readline-common,libc-bin,systemd
exclude+=,media-types,mime-support,netbase,libtirpc-common,libnginx-mod-http-echo
libs_pkgs=(libc6 libgcc-s1 libssl3 zlib1g libcrypt1 liblzma5 libzstd1)
declare -A layer_pkgs=(
  [nginx]="nginx nginx-common"
  [python]="python3-minimal libpython3.11-stdlib"
  [redis]="redis-server"
)

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-images.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$cache"

# The pinned name=version lists of every package set (and what they depend on), from one
# load of apt's cache; `set_list NAME` prints one set.
resolve_all() {
  local sets=("libs=$(IFS=,; echo "${libs_pkgs[*]}")" busybox=busybox-static) layer
  for layer in "${!layer_pkgs[@]}"; do sets+=("$layer=${layer_pkgs[$layer]// /,}"); done
  $tool closures --exclude "$exclude" "${sets[@]}"
}
set_list() { awk -v s="$1" '$1 == s { print $2 }' <<<"$resolved"; }

deb_of() {  # deb_of NAME=VERSION: the cached .deb's path (apt writes an epoch's ':' as %3a)
  local name=${1%%=*} ver=${1#*=}
  compgen -G "$cache/${name}_${ver//:/%3a}_*.deb" | head -n1
}

fetch() {  # fetch NAME=VERSION...: the .debs into $cache (kept for the next build)
  local missing=() spec
  for spec in "$@"; do
    [ -n "$(deb_of "$spec")" ] || missing+=("$spec")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== downloading ${#missing[@]} packages from Debian"
    (cd "$cache" && apt-get download -q "${missing[@]}" >"$work/download.log" 2>&1) ||
      cat "$work/download.log" >&2
  fi
  for spec in "$@"; do
    [ -n "$(deb_of "$spec")" ] || {
      echo "build.sh: could not download $spec (is apt's package list current? apt-get update)" >&2
      exit 1
    }
  done
}

extract() {  # extract DIR NAME=VERSION...: the packages' files into DIR, /usr merged
  local dir=$1 spec d
  shift
  mkdir -p "$dir"
  for spec in "$@"; do dpkg-deb -x "$(deb_of "$spec")" "$dir"; done
  for d in bin sbin lib lib64; do  # the base layer links these to usr/: keep that so
    if [ -d "$dir/$d" ] && [ ! -L "$dir/$d" ]; then
      mkdir -p "$dir/usr/$d"
      cp -a "$dir/$d/." "$dir/usr/$d/"
      rm -rf "${dir:?}/$d"
    fi
  done
  rm -rf "$dir"/usr/share/{doc,man,info,locale,lintian,bug,bash-completion,apport} \
    "$dir"/etc/{init.d,logrotate.d,default,systemd} "$dir"/lib/systemd "$dir"/usr/lib/systemd
}

echo "== resolving packages"
resolved=$(resolve_all)
mapfile -t libs_list < <(set_list libs)
mapfile -t busybox_list < <(set_list busybox)
fetch "${libs_list[@]}" "${busybox_list[@]}"

# base: busybox and our files
base=$work/base
extract "$work/busybox" "${busybox_list[@]}"
mkdir -p "$base"/usr/{bin,sbin,lib,lib64} "$base"/{proc,sys,dev,etc,root,run,srv,var/lib,var/log}
install -d -m 1777 "$base/tmp"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$base/$d"; done
cp "$work/busybox/usr/bin/busybox" "$base/usr/bin/busybox"
for applet in $("$base/usr/bin/busybox" --list-full); do
  case "$applet" in
    bin/busybox | usr/bin/busybox) ;;
    bin/* | usr/bin/*) ln -sf busybox "$base/usr/bin/${applet##*/}" ;;
    sbin/* | usr/sbin/*) ln -sf ../bin/busybox "$base/usr/sbin/${applet##*/}" ;;
  esac
done
cp -a "$here/files/base/." "$base/"

# libs: shared by every image
extract "$work/libs" "${libs_list[@]}"
declare -A in_libs=()
for spec in "${libs_list[@]}"; do in_libs[${spec%%=*}]=1; done

declare -A layer_of=([web]=nginx [api]=python [worker]=python [db]=python [mq]=redis)
declare -A files_of=([nginx]=web [python]=app [redis]=mq)
declare -A built=()
for image in "${images[@]}"; do
  layer=${layer_of[$image]}
  [ -z "${built[$layer]:-}" ] || continue
  mapfile -t pkgs < <(set_list "$layer")
  own=()
  for spec in "${pkgs[@]}"; do [ -n "${in_libs[${spec%%=*}]:-}" ] || own+=("$spec"); done
  echo "== layer $layer: ${own[*]%%=*}"
  fetch "${own[@]}"
  extract "$work/$layer" "${own[@]}"
  cp -a "$here/files/${files_of[$layer]}/." "$work/$layer/"
  built[$layer]=1
done

# Each layer tarred once, however many images share it.
for layer in base libs "${!built[@]}"; do
  $tool layer --out "$work/$layer.tar" "$work/$layer"
done

declare -A port_of=([web]=80 [api]=8080 [worker]='' [db]=7432 [mq]=6379)
for image in "${images[@]}"; do
  layer=${layer_of[$image]}
  exposed={}
  [ -z "${port_of[$image]}" ] || exposed="{\"${port_of[$image]}/tcp\": {}}"
  config=$(printf '{"Entrypoint": ["/usr/local/bin/berth-entry"], "Cmd": ["%s"],
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", "BERTH_ROLE=%s"],
    "WorkingDir": "/", "StopSignal": "SIGTERM", "ExposedPorts": %s,
    "Labels": {"org.openstack.berth.role": "%s"}}' "$image" "$image" "$exposed" "$image")
  $tool archive --out "$out/berth-$image.tar" --tag "berth-$image:latest" --config "$config" \
    "$work/base.tar" "$work/libs.tar" "$work/$layer.tar"
  if [ "$rootfs_tar" = 1 ]; then
    $tool rootfs-tar --out "$out/berth-$image.rootfs.tar" "$base" "$work/libs" "$work/$layer"
  fi
done
echo "== done in $(($(date +%s) - start)) s:"
ls -l "$out"
