#!/usr/bin/env bash
# Removes what a crashed or timed-out test left behind (a test killed by ctest's timeout
# cannot run its own cleanup): processes in berth-test cgroups, those cgroups, berth-test
# mounts and temp dirs. Only things named berth-test*, which only tests create.
# test.sh runs it after leak_check.sh has reported them, so a leak still fails the run.
set -uo pipefail

for procs in $(find /sys/fs/cgroup -path '*berth-test*' -name cgroup.procs 2>/dev/null); do
  while read -r pid; do
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  done <"$procs"
done
sleep 0.2
findmnt -rn -o TARGET | grep -E 'berth-test' | sort -r | while read -r m; do
  umount -l "$m" 2>/dev/null
done
find /sys/fs/cgroup -depth -type d -path '*berth-test*' -exec rmdir {} \; 2>/dev/null
for d in /tmp/berth-test.* /tmp/berth-test-*; do
  [ -e "$d" ] || continue
  findmnt -rn -o TARGET | grep -q "^$d" || rm -rf "$d"
done
nft list tables 2>/dev/null | grep -qE ' berth$' && nft list tables | grep -E ' berth$' | while read -r _ fam name; do
  nft delete table "$fam" "$name" 2>/dev/null
done
exit 0
