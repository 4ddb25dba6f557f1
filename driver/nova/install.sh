#!/bin/sh
# Links Berth's Nova driver into Debian's Nova (python3-nova, Nova 26 / Zed):
#   <site>/nova_berth    -> driver/nova/nova_berth       (the driver's code)
#   <nova>/virt/berth    -> driver/nova/nova_virt_berth  (the shim Nova loads:
#                                                         compute_driver = berth.BerthDriver)
# Links, not copies: the checkout stays the one copy of the code.
#
#   install.sh                 install (replaces links of an earlier install)
#   install.sh --uninstall     remove the two links (only if they are links)
#   --nova-dir DIR             Nova's package directory (default: from /usr/bin/python3)
#   --site-dir DIR             where nova_berth goes (default: the directory holding nova)
#   --no-check                 do not import nova.virt.berth afterwards
set -eu

here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/usr/bin/python3}
action=install
nova_dir=
site_dir=
check=1

while [ $# -gt 0 ]; do
  case "$1" in
    --uninstall) action=uninstall ;;
    --nova-dir) nova_dir=$2; shift ;;
    --site-dir) site_dir=$2; shift ;;
    --no-check) check=0 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$nova_dir" ]; then
  nova_dir=$("$python" -c 'import os, nova; print(os.path.dirname(nova.__file__))') || {
    echo "install.sh: $python cannot import nova: install python3-nova" >&2
    exit 1
  }
fi
[ -n "$site_dir" ] || site_dir=$(dirname "$nova_dir")
[ -d "$nova_dir/virt" ] || { echo "install.sh: $nova_dir/virt is not a directory" >&2; exit 1; }

link() {  # link TARGET NAME
  if [ -e "$2" ] && [ ! -L "$2" ]; then
    echo "install.sh: $2 exists and is not a link; not replacing it" >&2
    exit 1
  fi
  ln -sfn "$1" "$2"
  echo "linked $2 -> $1"
}

unlink_ours() {  # unlink NAME
  if [ -L "$1" ]; then
    rm -f "$1"
    echo "removed $1"
  elif [ -e "$1" ]; then
    echo "install.sh: $1 is not a link; left alone" >&2
  fi
}

case "$action" in
  install)
    link "$here/nova_berth" "$site_dir/nova_berth"
    link "$here/nova_virt_berth" "$nova_dir/virt/berth"
    if [ "$check" = 1 ]; then
      "$python" -c 'import sys; sys.path.insert(0, sys.argv[1]); import nova.virt.berth' \
        "$site_dir" >/dev/null 2>&1 || {
        echo "install.sh: linked, but $python cannot import nova.virt.berth" >&2
        exit 1
      }
    fi
    echo "Berth driver installed: set [DEFAULT] compute_driver = berth.BerthDriver"
    ;;
  uninstall)
    unlink_ours "$nova_dir/virt/berth"
    unlink_ours "$site_dir/nova_berth"
    ;;
esac
