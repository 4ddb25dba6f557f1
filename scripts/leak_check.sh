#!/usr/bin/env bash
# Fails when a test run left anything of Berth's on the machine: a mount, a cgroup, a
# monitor process, a network device or namespace, a temp dir. Tests name what they make
# "berth-test..." so their leftovers are easy to tell from anything else.
set -uo pipefail

left=""
add() { left+=$'\n'"  $1:"$'\n'"$(sed 's/^/    /' <<<"$2")"; }

m=$(findmnt -rn -o TARGET | grep -E 'berth-test' || true)
[ -n "$m" ] && add mounts "$m"
c=$(find /sys/fs/cgroup -maxdepth 3 -type d -name 'berth-test*' 2>/dev/null || true)
[ -n "$c" ] && add cgroups "$c"
p=$(pgrep -a -f 'berth-monitor --state-dir /tmp/berth-test' || true)
[ -n "$p" ] && add processes "$p"
n=$(ip -br link 2>/dev/null | grep -E 'berth-t|bt-' || true)
[ -n "$n" ] && add "network devices" "$n"
ns=$(ip netns list 2>/dev/null | grep -E 'berth-test' || true)
[ -n "$ns" ] && add "network namespaces" "$ns"
t=$(nft list tables 2>/dev/null | grep -E ' berth$' || true)
[ -n "$t" ] && add "nftables tables" "$t"
d=$(find /tmp -maxdepth 1 -name 'berth-test.*' 2>/dev/null || true)
[ -n "$d" ] && add "temp dirs" "$d"

if [ -n "$left" ]; then
  echo "leak check: the test run left these behind:$left"
  exit 1
fi
echo "leak check: nothing left behind"
