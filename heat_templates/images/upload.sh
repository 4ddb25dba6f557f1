#!/usr/bin/env bash
# Uploads build.sh's images to Glance with the formats Berth accepts, named as the Heat
# templates expect (berth-web, berth-api, berth-worker, berth-db, berth-mq).
#
#   upload.sh [--dir DIR] [--rootfs-tar] [--public] [--replace] [IMAGE...]
#
# Default: DIR/berth-IMAGE.tar as --container-format docker --disk-format raw (a
# docker-archive: its config gives the entrypoint). --rootfs-tar: DIR/berth-IMAGE.rootfs.tar
# as --container-format bare --disk-format root-tar, with the command in the image property
# os_command_line (a plain root filesystem has no config; Glance must list root-tar in
# [image_format] disk_formats). An image already there by that name is kept, unless
# --replace. Needs the usual OS_* variables (or OS_CLOUD) of a user who may create images.
set -euo pipefail
dir=${BERTH_IMAGES_OUT:-$PWD/berth-images}
rootfs=0
replace=0
visibility=()
images=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift ;;
    --rootfs-tar) rootfs=1 ;;
    --public) visibility=(--public) ;;
    --replace) replace=1 ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    web | api | worker | db | mq) images+=("$1") ;;
    *) echo "upload.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ ${#images[@]} -gt 0 ] || images=(web api worker db mq)

for image in "${images[@]}"; do
  name=berth-$image
  if openstack image show -f value -c id "$name" >/dev/null 2>&1; then
    if [ "$replace" = 0 ]; then
      echo "$name: already in Glance (upload.sh --replace to replace it)"
      continue
    fi
    openstack image delete "$name"
  fi
  if [ "$rootfs" = 1 ]; then
    openstack image create "$name" "${visibility[@]}" \
      --container-format bare --disk-format root-tar \
      --property os_command_line="/usr/local/bin/berth-entry $image" \
      --file "$dir/$name.rootfs.tar" -f value -c id
  else
    openstack image create "$name" "${visibility[@]}" \
      --container-format docker --disk-format raw \
      --file "$dir/$name.tar" -f value -c id
  fi
done
