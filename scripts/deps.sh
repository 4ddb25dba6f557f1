#!/usr/bin/env bash
# Installs everything Berth needs to build and test, from Debian's archive only.
# Safe to run again; does nothing when all packages are present.
#   deps.sh               everything: build, run and test
#   deps.sh --build-only  only what building and running Berth needs (the devstack plugin
#                         uses this: its Nova, os-vif and Heat come from git, not Debian)
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  rapidjson-dev libpistache-dev libarchive-dev libssl-dev libcurl4-openssl-dev
  libseccomp-dev libcap-dev libnl-3-dev libnl-route-3-dev libinih-dev libcli11-dev libspdlog-dev
  libfmt-dev libnftables-dev nftables
  libvirt-dev
  iproute2 util-linux procps curl openssl
)
PACKAGES=(
  "${BUILD_PACKAGES[@]}"
  clang clang-format libgtest-dev libgmock-dev
  busybox-static psmisc
  openvswitch-switch libvirt-daemon libvirt-clients dnsmasq-base btrfs-progs
  buildah skopeo umoci jq iperf3
  python3-nova python3-os-vif python3-oslotest python3-stestr python3-ddt
  python3-requests-mock python3-testscenarios python3-pytest python3-wsgi-intercept
  python3-heat python3-yaml python3-apt shellcheck python3-neutron sudo
)

if [ "${1:-}" = --build-only ]; then
  PACKAGES=("${BUILD_PACKAGES[@]}")
elif [ $# -gt 0 ]; then
  echo "deps.sh: unknown argument $1 (want --build-only or nothing)" >&2
  exit 2
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages such as openvswitch-switch and libvirt-daemon would start system services on
  # install; the tests start their own private instances, so keep the system's stopped.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    own_policy=1
  fi
  status=0
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" || status=$?
  if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi
  if [ "$status" != 0 ]; then exit "$status"; fi
fi

# The unprivileged host ids that root inside instances maps to.
"$(dirname "$0")/berth_user.sh"
