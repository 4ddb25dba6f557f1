#!/usr/bin/env bash
# TCP throughput between two Berth instances on berthd's bridge against the same between
# two plain network namespaces (joined by a veth pair, and on a plain Linux bridge), and
# the time networking adds to a spawn. Not part of the test suite; about 2-3 minutes with
# the defaults.
#
#   tests/bench/network/iperf3_bench.sh BUILD_DIR [RUNS=5] [SECONDS=5] [SPAWNS=10]
#   (as root; Debian's iperf3, busybox-static and jq)
#   FAST_PATH=false: berthd's bridge fast path off ([network] bridge_fast_path), so the
#   "fast path off" rows equal the Berth rows.
#   BR_NETFILTER=off: bridge-nf-call-{iptables,ip6tables,arptables}=0 in berthd's "host"
#   namespace and the plain bridge's, i.e. a host without br_netfilter; the default leaves
#   them as the kernel sets them in a new namespace (1 wherever br_netfilter is loaded or
#   built in), which costs every packet crossing the plain bridge a pass through the IP
#   hooks. berthd's bridge is in a namespace of its own where berthd turns them off
#   whatever the host's are (docs/networking.md), so only the baseline changes.
#
# Everything lives in network namespaces this script makes (no packet reaches the real
# host): berthd's "host" ([network] host_netns) is a namespace of its own holding the
# transit's host end and the NAT table; berthd's bridge namespace (bridge, bt- ends,
# anti-spoofing table) is pinned under its state dir; the baselines are namespaces too.
#
#  1. Throughput: iperf3 -s in one instance, iperf3 -c (SECONDS, one TCP stream) in the
#     other, both bridge mode, flavor VCPUS (env, default: all CPUs of the host, so the
#     flavor's CPU quota is not what is measured; VCPUS=1 shows its effect); the same
#     between two namespaces on a veth pair, and on a Linux bridge; and, as a diagnostic,
#     the instances again with berthd's bridge fast path (runtime/network/bridge_fast_path.h)
#     taken off their two ports for that run and put back (fast_path_toggle.c, built here),
#     so the frames cross the bridge and its rules. RUNS rounds, round-robin (load from other work on the
#     host hits every setup alike). Median Gbit/s and berth / baseline; the MTU and qdisc
#     of every device on the path.
#  1b. Cost per frame (frame_cost.c, built here with cc): FRAMES small UDP frames sent by
#     an AF_PACKET socket in the client's namespace to the server's address on each path;
#     the CPU time per frame of the sending thread, in whose softirq context the whole
#     path runs (veth, bridge, netfilter hooks, veth, the receiver's IP stack). "hot": in
#     batches of 64, everything in cache; "cold": one at a time after 2 x 256 KiB of memory
#     copies (the copies' own time taken off), as under a TCP stream, which evicts the
#     path's code and data between packets. Far steadier than throughput on a shared
#     host; the difference between two paths is what one of them adds per packet.
#  2. Spawn: SPAWNS instances in mode none and SPAWNS in mode bridge, alternating, each
#     created (and started) then deleted, while the two bridge instances of 1. run: median
#     time of POST /v1/instances (client side), berthd's own spawn time ("spawned ... in X
#     ms") and, for bridge, its network attach time ("network (bridge) attached in X ms");
#     median DELETE time.
#
# Everything it makes (namespaces, hence veths, bridges and nftables tables; instances,
# cgroups, mounts, the state dir, berthd, iperf3 servers) is removed on exit, also on
# failure or ^C.
set -euo pipefail

BUILD=${1:?usage: iperf3_bench.sh BUILD_DIR [RUNS] [SECONDS] [SPAWNS]}
RUNS=${2:-5}
SECS=${3:-5}
# Client on CPU 0, server on CPU 1 (iperf3 -A), the same on every path: on a 2-core guest
# where the scheduler puts the two ends varies more between rounds than the paths differ.
# IPERF3_AFFINITY="" lets the scheduler choose.
read -ra AFFINITY <<<"${IPERF3_AFFINITY--A 0,1}"
SPAWNS=${4:-10}
FRAMES=${FRAMES:-100000}
VCPUS=${VCPUS:-$(nproc)}
BR_NETFILTER=${BR_NETFILTER:-kernel}
FAST_PATH=${FAST_PATH:-true}
BERTHD=$BUILD/driver/server/berthd

die() {
  echo "iperf3_bench: $*" >&2
  exit 1
}
[[ $(id -u) == 0 ]] || die "must run as root"
[[ -x $BERTHD ]] || die "no berthd at $BERTHD"
IPERF3=$(command -v iperf3) || die "iperf3 is not installed (apt-get install iperf3)"
command -v jq >/dev/null || die "jq is not installed"
command -v cc >/dev/null || die "cc is not installed (gcc)"
[[ -x /bin/busybox ]] || die "busybox-static is not installed (/bin/busybox)"

TAG=bnb$$ # namespace and device names (<= 15 bytes)
HOSTNS=$TAG-host
NS_VA=$TAG-va NS_VB=$TAG-vb          # veth pair baseline
NS_BR=$TAG-br NS_BA=$TAG-ba NS_BB=$TAG-bb # Linux bridge baseline
ALL_NS=("$HOSTNS" "$NS_VA" "$NS_VB" "$NS_BR" "$NS_BA" "$NS_BB")
CG=berth-test-bench-net-$$
# The baselines' iperf3 processes run in a cgroup of their own beside berthd's cgroup
# parent, both with the default CPU weight: on a busy host a group competes as one
# entity, so baseline processes left in the root group would get more CPU than instances.
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then CPU_CG=/sys/fs/cgroup; else CPU_CG=/sys/fs/cgroup/cpu; fi
BASE_CG=$CPU_CG/$CG-base
D=$(mktemp -d /tmp/berth-test-bench-net.XXXXXX)
chmod 711 "$D" # instances in user namespaces reach their root through it
BERTHD_PID=
SERVER_PIDS=()
U=
H=

api() { # METHOD PATH [BODY]
  curl -sf -H "$H" -X "$1" "$U$2" ${3:+-d "$3"}
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [[ -n $BERTHD_PID ]] && kill -0 "$BERTHD_PID" 2>/dev/null; then
    for id in $(api GET /v1/instances 2>/dev/null | jq -r '.instances[]?.uuid // empty' 2>/dev/null); do
      api DELETE "/v1/instances/$id" >/dev/null 2>&1
    done
    kill -TERM "$BERTHD_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$BERTHD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BERTHD_PID" 2>/dev/null
    wait "$BERTHD_PID" 2>/dev/null
  fi
  for p in "${SERVER_PIDS[@]}"; do
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  # Instances berthd could not delete (it died): their processes are in our cgroup parent.
  for c in /sys/fs/cgroup/"$CG" /sys/fs/cgroup/*/"$CG"; do
    [[ -d $c ]] || continue
    if [[ -f $c/cgroup.kill ]]; then
      echo 1 >"$c/cgroup.kill"
    else
      find "$c" -name cgroup.procs -print0 | xargs -0 -r cat | xargs -r kill -9
    fi
  done
  grep -o " ${D}[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
  for c in /sys/fs/cgroup/"$CG" /sys/fs/cgroup/*/"$CG"; do
    [[ -d $c ]] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  [[ -d $BASE_CG ]] && rmdir "$BASE_CG"
  for ns in "${ALL_NS[@]}"; do
    [[ -e /run/netns/$ns ]] && ip netns del "$ns"
  done
  if ((rc != 0)) && [[ -f $D/err ]]; then
    echo "--- berthd log (tail) ---" >&2
    tail -20 "$D/err" >&2
  fi
  rm -rf "$D"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

mkdir "$BASE_CG"
in_base_cg() { # runs "$@" in the baselines' cgroup
  echo "$BASHPID" >"$BASE_CG/cgroup.procs"
  exec "$@"
}

# --- namespaces -------------------------------------------------------------------------
for ns in "${ALL_NS[@]}"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
# br_netfilter's switches are per namespace (since Linux 5.3); a bridge's own
# nf_call_iptables option can only turn them on, not off.
brnf_state() { # NETNS (a name under /run/netns, or a path)
  local path=$1
  [[ $path == /* ]] || path=/run/netns/$path
  nsenter --net="$path" sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null || echo "absent"
}
if [[ $BR_NETFILTER == off ]]; then
  for ns in "$HOSTNS" "$NS_BR"; do
    if [[ $(brnf_state "$ns") != absent ]]; then
      ip netns exec "$ns" sysctl -qw net.bridge.bridge-nf-call-iptables=0 \
        net.bridge.bridge-nf-call-ip6tables=0 net.bridge.bridge-nf-call-arptables=0
    fi
  done
elif [[ $BR_NETFILTER != kernel ]]; then
  die "BR_NETFILTER must be off or unset"
fi
# veth pair: A 10.231.8.1 <-> B 10.231.8.2
ip -n "$NS_VA" link add eth0 type veth peer name eth0 netns "$NS_VB"
ip -n "$NS_VA" addr add 10.231.8.1/24 dev eth0
ip -n "$NS_VB" addr add 10.231.8.2/24 dev eth0
ip -n "$NS_VA" link set eth0 up
ip -n "$NS_VB" link set eth0 up
# Linux bridge: br0 in its own namespace (as berthd's), A 10.231.9.2 and B 10.231.9.3
ip -n "$NS_BR" link add br0 type bridge
ip -n "$NS_BR" addr add 10.231.9.1/24 dev br0
ip -n "$NS_BR" link set br0 up
i=2
for ns in "$NS_BA" "$NS_BB"; do
  ip -n "$NS_BR" link add "h$i" type veth peer name eth0 netns "$ns"
  ip -n "$NS_BR" link set "h$i" master br0 up
  ip -n "$ns" addr add "10.231.9.$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  i=$((i + 1))
done

# --- berthd --------------------------------------------------------------------------------
cat >"$D/berthd.conf" <<CONF
[DEFAULT]
state_dir = $D/state
run_dir = $D/run
log_level = info
[api]
port = 0
token_file = $D/token
threads = 4
[instances]
cgroup_parent = $CG
[network]
default_mode = none
bridge = $TAG-b0
subnet = 10.231.7.0/24
host_netns = /run/netns/$HOSTNS
host_resolv_conf = $D/resolv.conf
bridge_fast_path = $FAST_PATH
CONF
: >"$D/resolv.conf"
"$BERTHD" --config "$D/berthd.conf" >"$D/out" 2>"$D/err" &
BERTHD_PID=$!
for _ in $(seq 100); do grep -q listening "$D/out" 2>/dev/null && break; sleep 0.05; done
grep -q listening "$D/out" || die "berthd did not start: $(tail -5 "$D/err")"
U=http://$(grep -o '127.0.0.1:[0-9]*' "$D/out")
H="X-Auth-Token: $(cat "$D/token")"

# An image of busybox plus iperf3 and its shared libraries (ldd closure, same paths).
R=$D/rootfs
mkdir -p "$R/bin" "$R/tmp" "$R/etc" "$R/usr/bin"
chmod 1777 "$R/tmp"
cp /bin/busybox "$R/bin/"
for t in sh sleep ip cat; do ln -s busybox "$R/bin/$t"; done
cp "$IPERF3" "$R/usr/bin/iperf3"
for lib in $(ldd "$IPERF3" | grep -o '/[^ ]*'); do
  mkdir -p "$R$(dirname "$lib")"
  cp -L "$lib" "$R$lib"
done
tar -C "$R" -cf "$D/iperf3.tar" .
curl -sf -H "$H" -H "Content-Type: application/x-tar" --data-binary @"$D/iperf3.tar" \
  "$U/v1/images?name=iperf3&format=rootfs-tar" >/dev/null || die "image import failed"

spawn() { # MODE COMMAND_JSON -> uuid
  api POST /v1/instances "{\"image\": \"iperf3\", \"flavor\": {\"vcpus\": $VCPUS, \"memory_mb\": 256},
    \"command\": $2, \"network\": {\"mode\": \"$1\"}}" | jq -r .uuid
}
ipv4_of() { api GET "/v1/instances/$1" | jq -r '.network.interfaces[0].addresses[0]' | cut -d/ -f1; }

SRV=$(spawn bridge '["iperf3", "-s"]')
CLI=$(spawn bridge '["sh", "-c", "trap \"exit 0\" TERM; while true; do sleep 1; done"]')
SRV_IP=$(ipv4_of "$SRV")
[[ $SRV_IP == 10.231.7.* ]] || die "server instance has no bridge address ($SRV_IP)"
# berthd's bridge namespace (its pin), where the bridge and the bt- ends are.
BRNS=$(api GET "/v1/instances/$SRV" | jq -r '.network.interfaces[0].host_netns')
[[ -e $BRNS ]] || die "no bridge namespace pin ($BRNS)"

(in_base_cg ip netns exec "$NS_VA" "$IPERF3" -s -B 10.231.8.1 >/dev/null 2>&1) &
SERVER_PIDS+=($!)
(in_base_cg ip netns exec "$NS_BA" "$IPERF3" -s -B 10.231.9.2 >/dev/null 2>&1) &
SERVER_PIDS+=($!)
# Diagnostic: Berth's network path (veths, bridge, nftables) without the containers
# (cgroups, seccomp, user namespace): iperf3 from the baselines' cgroup, entering only the
# instances' network namespaces.
SRV_PID=$(api GET "/v1/instances/$SRV" | jq -r .pid)
CLI_PID=$(api GET "/v1/instances/$CLI" | jq -r .pid)
(in_base_cg nsenter --net="/proc/$SRV_PID/ns/net" "$IPERF3" -s -p 5202 >/dev/null 2>&1) &
SERVER_PIDS+=($!)
sleep 0.5

gbits() { jq -r '.end.sum_received.bits_per_second / 1e9' 2>/dev/null || echo nan; }
run_berth() {
  local args
  args=$(printf '%s\n' iperf3 -c "$SRV_IP" -t "$SECS" "${AFFINITY[@]}" -J | jq -R . | jq -cs .)
  api POST "/v1/instances/$CLI/exec" "{\"command\": $args}" | jq -r .stdout | gbits
}
# Diagnostic: runs "$@" on the same instances with berthd's fast path (its eBPF program on
# both bt- ends) taken off and put back unchanged, so the frames cross the bridge and its
# rules as they did before the fast path: what the fast path saves.
cc -O2 -o "$D/fast_path_toggle" "$(dirname "$0")/fast_path_toggle.c" || die "cannot build fast_path_toggle.c"
mkdir -p "$D/bpffs"
mount -t bpf bpf "$D/bpffs"
PORTS=("$(api GET "/v1/instances/$SRV" | jq -r '.network.interfaces[0].host_ifname')"
  "$(api GET "/v1/instances/$CLI" | jq -r '.network.interfaces[0].host_ifname')")
grep -o 'bridge fast path [^"]*' "$D/err" | head -1 >&2
without_fast_path() {
  local v p
  [[ $FAST_PATH == true ]] || { "$@"; return; }
  for p in "${PORTS[@]}"; do nsenter --net="$BRNS" "$D/fast_path_toggle" off "$p" "$D/bpffs/$p" || die "fast path off $p"; done
  v=$("$@")
  for p in "${PORTS[@]}"; do nsenter --net="$BRNS" "$D/fast_path_toggle" on "$p" "$D/bpffs/$p" || die "fast path on $p"; done
  echo "$v"
}
run_berth_nofast() { without_fast_path run_berth; }
run_berth_net_only() {
  (in_base_cg nsenter --net="/proc/$CLI_PID/ns/net" "$IPERF3" -c "$SRV_IP" -p 5202 -t "$SECS" "${AFFINITY[@]}" -J) | gbits
}
run_veth() { (in_base_cg ip netns exec "$NS_VB" "$IPERF3" -c 10.231.8.1 -t "$SECS" "${AFFINITY[@]}" -J) | gbits; }
run_bridge() { (in_base_cg ip netns exec "$NS_BB" "$IPERF3" -c 10.231.9.2 -t "$SECS" "${AFFINITY[@]}" -J) | gbits; }

# Same MTU and queueing discipline on every path, or the comparison is not fair.
devices() { # NETNS(name or path) DEV...
  local path=$1
  [[ $path == /* ]] || path=/run/netns/$path
  for dev in "${@:2}"; do nsenter --net="$path" ip -o link show "$dev" | awk '{printf "%s mtu %s qdisc %s; ", $2, $5, $7}'; done
}
echo "devices: berth bridge ns: $(devices "$BRNS" "$TAG-b0" "$(api GET "/v1/instances/$SRV" | jq -r '.network.interfaces[0].host_ifname')")" >&2
echo "         berth instance: $(api POST "/v1/instances/$CLI/exec" '{"command": ["ip", "-o", "link", "show", "eth0"]}' | jq -r .stdout | awk 'NR == 1 {printf "%s mtu %s qdisc %s", $2, $5, $7}')" >&2
echo "         baselines: $(devices "$NS_VA" eth0) $(devices "$NS_BR" br0 h2)" >&2
echo "br_netfilter (bridge-nf-call-iptables): berthd's host namespace $(brnf_state "$HOSTNS"), berthd's bridge namespace $(brnf_state "$BRNS"), plain bridge's $(brnf_state "$NS_BR")" >&2
echo "iperf3: $RUNS rounds of $SECS s, one TCP stream, round-robin; instances' flavor vcpus=$VCPUS" >&2
for f in t.berth t.veth t.bridge t.berth_nofast t.berth_net_only; do : >"$D/$f"; done
for r in $(seq "$RUNS"); do
  for kind in veth bridge berth berth_nofast berth_net_only; do
    v=$("run_$kind")
    echo "$v" >>"$D/t.$kind"
    printf '  round %d %-15s %6.2f Gbit/s\n' "$r" "$kind" "$v" >&2
  done
done
m_veth=$(median <"$D/t.veth")
m_bridge=$(median <"$D/t.bridge")
m_berth=$(median <"$D/t.berth")
m_nofast=$(median <"$D/t.berth_nofast")
m_netonly=$(median <"$D/t.berth_net_only")
# Paired ratios: each round's Berth figure over the same round's baseline, so load that
# changes during the run (a busy shared host) does not skew the ratio.
paired() { paste "$D/t.berth" "$D/t.$1" | awk '$2 > 0 {print 100 * $1 / $2}' | median; }
r_veth=$(paired veth)
r_bridge=$(paired bridge)

# --- cost per frame ---------------------------------------------------------------------
cc -O2 -o "$D/frame_cost" "$(dirname "$0")/frame_cost.c" || die "cannot build frame_cost.c"
mac_in() { ip -n "$1" -o link show eth0 | grep -o 'link/ether [^ ]*' | cut -d' ' -f2; }
CLI_MAC=$(api GET "/v1/instances/$CLI" | jq -r '.network.interfaces[0].mac')
SRV_MAC=$(api GET "/v1/instances/$SRV" | jq -r '.network.interfaces[0].mac')
CLI_IP=$(ipv4_of "$CLI")
frames_on() { # NETNS_ARGS... -- SRC_MAC DST_MAC SRC_IP DST_IP ; prints "hot cold" ns/frame
  local ns=() hot cold
  while [[ $1 != -- ]]; do ns+=("$1"); shift; done
  shift
  hot=$(in_base_cg_run "${ns[@]}" "$D/frame_cost" eth0 "$@" "$FRAMES")
  cold=$(in_base_cg_run "${ns[@]}" "$D/frame_cost" eth0 "$@" $((FRAMES / 5)) 262144)
  echo "$hot $cold"
}
in_base_cg_run() { (in_base_cg "$@"); }
fc_veth() { frames_on ip netns exec "$NS_VB" -- "$(mac_in "$NS_VB")" "$(mac_in "$NS_VA")" 10.231.8.2 10.231.8.1; }
fc_bridge() { frames_on ip netns exec "$NS_BB" -- "$(mac_in "$NS_BB")" "$(mac_in "$NS_BA")" 10.231.9.3 10.231.9.2; }
fc_berth() { frames_on nsenter --net="/proc/$CLI_PID/ns/net" -- "$CLI_MAC" "$SRV_MAC" "$CLI_IP" "$SRV_IP"; }
fc_berth_nofast() { without_fast_path fc_berth; }
echo "cost per frame: $RUNS rounds of $FRAMES frames (hot) and $((FRAMES / 5)) (cold), round-robin" >&2
for f in f.veth f.bridge f.berth f.berth_nofast; do : >"$D/$f"; done
for r in $(seq "$RUNS"); do
  for kind in veth bridge berth berth_nofast; do
    v=$("fc_$kind")
    echo "$v" >>"$D/f.$kind"
    printf '  round %d %-15s hot %6s  cold %6s ns/frame\n' "$r" "$kind" $v >&2
  done
done
fmed() { cut -d' ' -f"$2" "$D/f.$1" | median; }
fmin() { cut -d' ' -f"$2" "$D/f.$1" | sort -g | head -1; }

# --- spawn latency: none vs bridge -------------------------------------------------------
# The two iperf3 instances stay attached: a spawn then joins a bridge in use, as it
# usually does (the first attach to an empty bridge also creates berthd's nftables tables,
# and the last detach removes them).
echo "spawn: $SPAWNS per mode, alternating, each created+started then deleted (2 bridge instances running)" >&2
for f in s.none s.bridge d.none d.bridge ids.none ids.bridge; do : >"$D/$f"; done
for _ in $(seq "$SPAWNS"); do
  for mode in none bridge; do
    out=$(curl -sf -H "$H" -X POST "$U/v1/instances" -w '\n%{time_total}' -d "{\"image\": \"iperf3\",
      \"flavor\": {\"vcpus\": $VCPUS, \"memory_mb\": 64}, \"command\": [\"sleep\", \"1000\"],
      \"network\": {\"mode\": \"$mode\"}}")
    id=$(head -1 <<<"$out" | jq -r .uuid)
    tail -1 <<<"$out" >>"$D/s.$mode"
    echo "$id" >>"$D/ids.$mode"
    curl -sf -H "$H" -X DELETE "$U/v1/instances/$id" -o /dev/null -w '%{time_total}\n' >>"$D/d.$mode"
  done
done
# berthd's own figures for exactly these instances, from its log.
server_ms() { # MODE PATTERN(sed, \1 = ms)
  while read -r id; do grep -F "instance $id" "$D/err" | sed -nE "s/.*$2.*/\1/p" | head -1; done <"$D/ids.$1"
}
ms_median() { awk '{print $1*1000}' "$1" | median; }
api_none=$(ms_median "$D/s.none")
api_bridge=$(ms_median "$D/s.bridge")
del_none=$(ms_median "$D/d.none")
del_bridge=$(ms_median "$D/d.bridge")
SPAWNED='spawned from [^ ]* in ([0-9.]+) ms'
srv_none=$(server_ms none "$SPAWNED" | median)
srv_bridge=$(server_ms bridge "$SPAWNED" | median)
attach_bridge=$(server_ms bridge 'network \(bridge\) attached in ([0-9.]+) ms' | median)
api DELETE "/v1/instances/$SRV" >/dev/null
api DELETE "/v1/instances/$CLI" >/dev/null

# --- table ---------------------------------------------------------------------------------
echo
echo "TCP throughput, iperf3 one stream ${SECS}s, median of $RUNS (Gbit/s); bridge-nf-call-iptables: host $(brnf_state "$HOSTNS"), berthd's bridge ns $(brnf_state "$BRNS"), plain bridge's $(brnf_state "$NS_BR")"
printf '  %-44s %8.2f\n' "netns <-> netns, veth pair" "$m_veth"
printf '  %-44s %8.2f\n' "netns <-> netns, plain Linux bridge" "$m_bridge"
printf '  %-44s %8.2f\n' "Berth instance <-> instance, berthd bridge" "$m_berth"
printf '  %-44s %8.2f\n' "  same, fast path off (diag.)" "$m_nofast"
printf '  %-44s %8.2f\n' "  Berth's path, iperf3 outside the containers" "$m_netonly"
printf '  %-44s %7.1f%%  (target >= 95%%)\n' "Berth / veth pair, median of per-round" "$r_veth"
printf '  %-44s %7.1f%%\n' "Berth / plain Linux bridge, median per-round" "$r_bridge"
echo
echo "Cost per frame (CPU ns in the sender's context, whole path), median (min) of $RUNS"
printf '  %-44s %15s %15s\n' "" hot cold
for kind in veth bridge berth berth_nofast; do
  case $kind in
  veth) label="netns <-> netns, veth pair" ;;
  bridge) label="netns <-> netns, plain Linux bridge" ;;
  berth) label="Berth instance <-> instance, berthd bridge" ;;
  berth_nofast) label="  same, fast path off (diag.)" ;;
  esac
  printf '  %-44s %7.0f (%5.0f) %7.0f (%5.0f)\n' "$label" "$(fmed "$kind" 1)" "$(fmin "$kind" 1)" \
    "$(fmed "$kind" 2)" "$(fmin "$kind" 2)"
done
echo
echo "Spawn and delete, median of $SPAWNS per mode (ms)"
printf '  %-10s %12s %14s %14s %12s\n' mode "POST (api)" "berthd spawn" "net attach" "DELETE"
printf '  %-10s %12.1f %14.1f %14s %12.1f\n' none "$api_none" "$srv_none" "-" "$del_none"
printf '  %-10s %12.1f %14.1f %14.1f %12.1f\n' bridge "$api_bridge" "$srv_bridge" "$attach_bridge" "$del_bridge"
printf '  %-10s %12.1f %14.1f %14s %12.1f\n' "added" "$(echo "$api_bridge - $api_none" | bc -l)" \
  "$(echo "$srv_bridge - $srv_none" | bc -l)" "" "$(echo "$del_bridge - $del_none" | bc -l)"
