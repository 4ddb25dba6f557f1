#!/usr/bin/env bash
# End to end: a single-machine OpenStack Zed from Debian 12's packages with Berth as Nova's
# compute driver, then `openstack server create` -> ACTIVE and the whole lifecycle through
# the openstack CLI, checking the Berth container underneath after every step.
#
# Run as root on a Debian 12 machine (not part of the default test suite; ~15-25 min on
# 2 cores, most of it the package install on a fresh machine):
#
#   tests/e2e/openstack_e2e.sh              install, configure, start, test, tear down
#   BERTH_E2E_KEEP=1 tests/e2e/openstack_e2e.sh   leave everything running at the end
#                                                 (stop it with: tests/e2e/openstack_e2e.sh stop)
#   tests/e2e/openstack_e2e.sh setup        install, configure, start; leave it running
#   tests/e2e/openstack_e2e.sh test         the test part only, against a running setup
#   tests/e2e/openstack_e2e.sh stop         stop what setup (or a kept run) started
#
# Environment:
#   BERTH_E2E_PRELOAD=1 also imports the demo archive into berthd under the Glance
#       image id, so spawn finds it without berthd downloading from Glance; 0 = berthd must
#       fetch it from Glance itself (glance_adapter) with the token Nova passes (default).
#   BERTH_E2E_HEAT=1 (default) the Heat part; 0 skips it.
#   BERTH_E2E_NEUTRON=1 (default) Neutron with ML2/linuxbridge and the Linux bridge agent
#       on a flat provider network whose "physical" interface is one end of a veth pair
#       the script makes (berthe2e0; the host's address 10.231.0.1 on the other end,
#       berthe2e1; no real NIC is bridged, nothing leaves the machine): servers booted
#       with --network, checked inside and reached from the host and from each other;
#       with Heat, the heat_templates/ images built, uploaded and both templates run as
#       stacks on that network. 0: Neutron without agents, --nic none only.
#   BERTH_E2E_LIFECYCLE=0 skips the one-server lifecycle part (for iterating on the rest).
#   BERTH_E2E_IMAGES ($BERTH_E2E_DIR/heat-images) where heat_templates/images/build.sh
#       writes the images (rebuilt when a file under heat_templates/images/ is newer).
#   BERTH_E2E_FAKE=1 (default) a second nova-compute with Nova's fake driver, for the
#       create -> ACTIVE baseline; 0 skips it.
#   BERTH_E2E_GLANCE_TESTS=1 (default) the glance_adapter C++ tests against this real
#       Keystone and Glance (tests/integration/glance/real_openstack_test.cc, the binary
#       BERTH_E2E_GLANCE_TEST_BIN, default $BERTH_BUILD_DIR/tests/berth_integration_glance,
#       built when missing); 0 skips them.
#   BERTH_E2E_SKIP_INSTALL=1 skip apt-get (packages already there).
#   BERTH_E2E_DIR (/var/lib/berth-e2e) every file this script makes: configs, logs, pids,
#       Glance's store, berthd's state. BERTH_BUILD_DIR (build): where berthd is built.
#   BERTH_E2E_PORT (18780) berthd's port.
#
# Every service runs as its own user in its own session (setsid), on 127.0.0.1; its pid is
# in $BERTH_E2E_DIR/run/<name>.pid and the exit trap stops each by its process group.
# The figures are printed at the end and kept in $BERTH_E2E_DIR/figures.txt.
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/tests/e2e
E2E_DIR=${BERTH_E2E_DIR:-/var/lib/berth-e2e}
BUILD_DIR=${BERTH_BUILD_DIR:-$REPO/build}
BERTH_PORT=${BERTH_E2E_PORT:-18780}
PRELOAD=${BERTH_E2E_PRELOAD:-0}
HEAT=${BERTH_E2E_HEAT:-1}
FAKE=${BERTH_E2E_FAKE:-1}
NEUTRON=${BERTH_E2E_NEUTRON:-1}
LIFECYCLE=${BERTH_E2E_LIFECYCLE:-1}
KEEP=${BERTH_E2E_KEEP:-0}
GLANCE_TESTS=${BERTH_E2E_GLANCE_TESTS:-1}
PASS=${BERTH_E2E_PASSWORD:-berth-e2e-secret}
REGION=RegionOne
CGROUP_PARENT=berth-e2e
ETC=$E2E_DIR/etc
LOG=$E2E_DIR/log
RUN=$E2E_DIR/run
BERTH_URL=http://127.0.0.1:$BERTH_PORT
KS=http://127.0.0.1:5000
DB="mysql+pymysql"
PY=/usr/bin/python3
FIGURES=$E2E_DIR/figures.txt
IMAGES_DIR=${BERTH_E2E_IMAGES:-$E2E_DIR/heat-images}
# The provider network: a flat network on physical network $NET_PHYSNET, mapped by the
# agent to $NET_LINK, one end of a veth pair whose other end ($NET_HOST_LINK) holds the
# host's address (the subnet's gateway). No real NIC joins it: this kernel has no dummy
# interfaces, and a veth pair keeps every frame on the machine just as well.
NET_PHYSNET=berthe2e
NET_LINK=berthe2e0
NET_HOST_LINK=berthe2e1
NET_CIDR=10.231.0.0/24
NET_HOST_IP=10.231.0.1
NET_MTU=1450
NET_NAME=berth-e2e-net
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

# Services in start order; teardown goes the other way.
SERVICES=(mariadb epmd rabbitmq memcached keystone placement glance neutron
  neutron-linuxbridge-agent berthd nova-api nova-conductor nova-scheduler nova-compute
  nova-compute-fake heat-api heat-engine)
DATABASES=(keystone glance placement nova_api nova nova_cell0 neutron heat)

say() { printf '\n== %s [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }
die() { printf 'openstack_e2e: FAILED: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
figure() {  # figure NAME VALUE UNIT
  printf '%-44s %10s %s\n' "$1" "$2" "$3" | tee -a "$FIGURES"
}

# ---------------------------------------------------------------------------------------
# Processes: each in its own session, as its own user; stopped by process group.

start_svc() {  # start_svc NAME USER CMD...   (env for CMD: set it before calling)
  local name=$1 user=$2
  shift 2
  stop_svc "$name"  # one of each, even when a phase is run again by hand
  if [ "$user" = root ]; then
    setsid "$@" >>"$LOG/$name.log" 2>&1 </dev/null &
  else
    setsid setpriv --reuid="$user" --regid="$user" --init-groups "$@" \
      >>"$LOG/$name.log" 2>&1 </dev/null &
  fi
  echo $! >"$RUN/$name.pid"
  echo "started $name (pid $!, user $user, log $LOG/$name.log)"
}

as() {  # as USER CMD...: a one-off command as a service user
  local user=$1
  shift
  setpriv --reuid="$user" --regid="$user" --init-groups "$@"
}

# A pid file's process is ours only if it still leads the session we made for it.
alive_leader() { [ -n "$1" ] && [ "$(ps -o sid= -p "$1" 2>/dev/null | tr -d ' ')" = "$1" ]; }

stop_svc() {  # stop_svc NAME
  local f=$RUN/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if alive_leader "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      kill -0 -- "-$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 -- "-$pid" 2>/dev/null; then
      echo "stop $1: process group $pid still there after 15 s: SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || true
      sleep 0.5
    fi
    echo "stopped $1 (process group $pid)"
  fi
  rm -f "$f"
}

wait_http() {  # wait_http NAME URL [SECONDS]
  local deadline=$((SECONDS + ${3:-120}))
  until curl -s -o /dev/null -m 5 "$2"; do
    [ $SECONDS -lt $deadline ] || die "$1 does not answer at $2 (log: $LOG/$1.log)"
    alive_leader "$(cat "$RUN/$1.pid" 2>/dev/null)" || {
      tail -30 "$LOG/$1.log" >&2
      die "$1 exited (log: $LOG/$1.log)"
    }
    sleep 0.5
  done
}

berth_api() {  # berth_api METHOD PATH [JSON]
  local args=(-sS -m 120 -X "$1" -H "X-Auth-Token: $(cat "$E2E_DIR/berth/admin-token")")
  [ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' -d "$3")
  curl "${args[@]}" "$BERTH_URL$2"
}

# Leftovers of berthd's instances: mounts under its state dir and its cgroups.
berth_leftovers() {
  local n=0 m c
  while read -r m; do
    echo "leftover mount: $m"
    n=$((n + 1))
  done < <(awk -v d="$E2E_DIR/berth/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo)
  for c in /sys/fs/cgroup/*/"$CGROUP_PARENT"/*/ /sys/fs/cgroup/"$CGROUP_PARENT"/*/; do
    [ -d "$c" ] || continue
    echo "leftover cgroup: $c"
    n=$((n + 1))
  done
  return "$n"
}

unmount_berth_state() {
  awk -v d="$E2E_DIR/berth/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | while read -r m; do umount -l "$m" && echo "unmounted leftover $m"; done
}

# ---------------------------------------------------------------------------------------
# The provider network's link (BERTH_E2E_NEUTRON): a veth pair, all ours by name.

make_provider_link() {
  remove_provider_link
  if [ -n "$(ip -4 route show "$NET_CIDR")" ]; then
    die "$NET_CIDR is already routed on this machine: $(ip -4 route show "$NET_CIDR")"
  fi
  ip link add "$NET_LINK" mtu "$NET_MTU" type veth peer name "$NET_HOST_LINK" mtu "$NET_MTU"
  ip addr add "$NET_HOST_IP/${NET_CIDR#*/}" dev "$NET_HOST_LINK"
  ip link set "$NET_LINK" up
  ip link set "$NET_HOST_LINK" up
  echo "provider link: $NET_LINK (physnet $NET_PHYSNET) <-> $NET_HOST_LINK $NET_HOST_IP/${NET_CIDR#*/}, MTU $NET_MTU"
}

# What the agent and berthd leave if they are stopped with ports still on the network:
# the brq bridge that holds our link, the ebtables anti-spoofing chains of taps that no
# longer exist, then the veth pair (deleting one end deletes both).
remove_provider_link() {
  local br chain net
  if [ -e "/sys/class/net/$NET_LINK/master" ]; then
    br=$(basename "$(readlink "/sys/class/net/$NET_LINK/master")")
    case "$br" in
      brq*) ip link del "$br" && echo "removed bridge $br" ;;
    esac
  fi
  # os-vif makes the network's bridge before the agent adds our link to it.
  net=$(cat "$RUN/net-id" 2>/dev/null || true)
  if [ -n "$net" ] && [ -d "/sys/class/net/brq${net:0:11}/bridge" ]; then
    ip link del "brq${net:0:11}" && echo "removed bridge brq${net:0:11}"
  fi
  rm -f "$RUN/net-id"
  if command -v ebtables >/dev/null && ebtables -t nat -L >/dev/null 2>&1; then
    for chain in $(ebtables -t nat -L 2>/dev/null |
      sed -n 's/^Bridge chain: \(neutron\(ARP\|MAC\)-\(tap[^,]*\)\),.*/\1/p'); do
      [ ! -e "/sys/class/net/${chain#neutron???-}" ] || continue
      ebtables -t nat -L PREROUTING 2>/dev/null | grep -e "-j $chain" | while read -r rule; do
        # shellcheck disable=SC2086  # the rule's words, as ebtables listed them
        ebtables -t nat -D PREROUTING $rule
      done
      ebtables -t nat -F "$chain" && ebtables -t nat -X "$chain" && echo "removed ebtables chain $chain"
    done
  fi
  # ebtables-nft made the kernel table "bridge nat" for the agent; once it holds no rule
  # and no chain of anyone's, it goes too.
  if command -v nft >/dev/null && nft list table bridge nat >/dev/null 2>&1 &&
    [ "$(nft list table bridge nat | grep -cv -e '^table' -e '^\s*chain \(PREROUTING\|OUTPUT\|POSTROUTING\) {' \
      -e '^\s*type filter hook' -e '^\s*}' -e '^\s*$')" = 0 ]; then
    nft delete table bridge nat && echo "removed the empty nftables table bridge nat"
  fi
  if [ -e "/sys/class/net/$NET_LINK" ]; then
    ip link del "$NET_LINK" && echo "removed veth $NET_LINK/$NET_HOST_LINK"
  fi
}

start_linuxbridge_agent() {
  make_provider_link
  start_svc neutron-linuxbridge-agent root /usr/bin/neutron-linuxbridge-agent \
    --config-file "$ETC/neutron/neutron.conf" --config-file "$ETC/neutron/linuxbridge_agent.ini"
}

# The agent reports itself alive to neutron-server over RabbitMQ (report_interval 30 s,
# the first report at start).
wait_agent_alive() {
  local deadline=$((SECONDS + 180))
  until openstack network agent list --agent-type linux-bridge --host "$BERTH_HOST" -f value \
    -c Alive 2>/dev/null | grep -q -e True -e ':-)'; do
    [ $SECONDS -lt $deadline ] || {
      tail -30 "$LOG/neutron-linuxbridge-agent.log" >&2
      die "the Linux bridge agent on $BERTH_HOST is not alive (log: $LOG/neutron-linuxbridge-agent.log)"
    }
    alive_leader "$(cat "$RUN/neutron-linuxbridge-agent.pid" 2>/dev/null)" || {
      tail -30 "$LOG/neutron-linuxbridge-agent.log" >&2
      die "the Linux bridge agent exited (log: $LOG/neutron-linuxbridge-agent.log)"
    }
    sleep 2
  done
  echo "  ok: Linux bridge agent alive on $BERTH_HOST"
}

teardown() {
  local rc=$?
  set +e
  if [ "$KEEP" = 1 ] && [ "$rc" = 0 ] && [ "${1:-}" != force ]; then
    echo "BERTH_E2E_KEEP=1: everything keeps running; stop it with: $0 stop"
    return $rc
  fi
  say "teardown"
  # berthd's instances first, while berthd still runs (Nova may have left some on failure).
  if [ -f "$RUN/berthd.pid" ] && alive_leader "$(cat "$RUN/berthd.pid")"; then
    for u in $(berth_api GET /v1/instances 2>/dev/null | $PY -c '
import json, sys
try: print(" ".join(i["uuid"] for i in json.load(sys.stdin)["instances"]))
except Exception: pass'); do
      berth_api DELETE "/v1/instances/$u" >/dev/null && echo "deleted berthd instance $u"
    done
  fi
  local i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    # The agent removes the anti-spoofing chains of the taps berthd just deleted on its
    # next poll (1 s): give it that before stopping it.
    [ "${SERVICES[$i]}" != neutron-linuxbridge-agent ] || [ ! -f "$RUN/${SERVICES[$i]}.pid" ] ||
      sleep 3
    stop_svc "${SERVICES[$i]}"
  done
  remove_provider_link
  # What berthd could not remove (it was killed, or an instance was stuck).
  unmount_berth_state
  for c in /sys/fs/cgroup/*/"$CGROUP_PARENT" /sys/fs/cgroup/"$CGROUP_PARENT"; do
    [ -d "$c" ] || continue
    find "$c" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
    rmdir "$c" 2>/dev/null
  done
  if [ -L /usr/lib/python3/dist-packages/nova/virt/berth ] &&
    [ "$(readlink /usr/lib/python3/dist-packages/nova/virt/berth)" = "$REPO/driver/nova/nova_virt_berth" ]; then
    "$REPO/driver/nova/install.sh" --uninstall >/dev/null
  fi
  echo "teardown done (logs kept in $LOG)"
  return $rc
}

# ---------------------------------------------------------------------------------------
# 1. Packages

install_packages() {
  # shellcheck source=/dev/null
  source "$HERE/packages.sh"
  echo "$E2E_DEBCONF" | debconf-set-selections
  # Nothing may start at install time: no systemd here, and the script starts each
  # service itself. Keep an existing policy-rc.d; else put one in for the install only.
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local t0 pkgs=("${E2E_PACKAGES[@]}")
  [ "$NEUTRON" = 0 ] || pkgs+=("${E2E_NEUTRON_PACKAGES[@]}")
  t0=$(now)
  # A fresh machine may have no package lists yet.
  if ! apt-cache policy keystone 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get update -q -o DPkg::Lock::Timeout=1200 >>"$LOG/apt.log" 2>&1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=1200 \
    --no-install-recommends "${pkgs[@]}" >"$LOG/apt.log" 2>&1 || {
    [ "$made_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
    tail -20 "$LOG/apt.log" >&2
    die "apt-get install failed (log: $LOG/apt.log)"
  }
  [ "$made_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
  figure "package install (apt-get, incl. lock wait)" "$(since "$t0")" s
}

# ---------------------------------------------------------------------------------------
# 2. Configuration: every file under $ETC, written fresh on every run.

os_env() {  # the admin's credentials for the openstack CLI and e2e_helper.py
  export OS_AUTH_URL=$KS/v3 OS_USERNAME=admin OS_PASSWORD=$PASS OS_PROJECT_NAME=admin
  export OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_IDENTITY_API_VERSION=3
  export OS_REGION_NAME=$REGION OS_COMPUTE_API_VERSION=2.latest OS_INTERFACE=public
}

ksat() {  # ksat USER: a [keystone_authtoken] section
  cat <<EOF
[keystone_authtoken]
www_authenticate_uri = $KS
auth_url = $KS
memcached_servers = 127.0.0.1:11211
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $PASS
region_name = $REGION
EOF
}

ks_auth() {  # ks_auth SECTION USER: keystoneauth options for a client section
  cat <<EOF
[$1]
auth_type = password
auth_url = $KS
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $2
password = $PASS
region_name = $REGION
EOF
}

# berthd.conf. The [keystone] and [glance] sections are read by the glance_adapter (berthd
# downloading Glance images with the token Nova passes); their option names live only here.
write_berthd_conf() {
  cat >"$ETC/berth/berthd.conf" <<EOF
[DEFAULT]
log_level = info
state_dir = $E2E_DIR/berth/state
run_dir = $E2E_DIR/berth/run
[api]
listen = 127.0.0.1
port = $BERTH_PORT
token_file = $E2E_DIR/berth/admin-token
threads = 4
[instances]
cgroup_parent = $CGROUP_PARENT
default_stop_timeout = 10
state_refresh_ms = 500
[keystone]
auth_url = $KS/v3
username = nova
password = $PASS
project_name = service
user_domain_name = Default
project_domain_name = Default
[glance]
api_url = http://127.0.0.1:9292
interface = public
region_name = $REGION
EOF
}

# The Linux bridge agent (run as root: it makes bridges and ebtables rules through
# privsep, which root starts with plain sudo; as the neutron user it would need rootwrap
# filters that accept config files outside /etc). physnet -> the veth end the script makes;
# no VXLAN. Security groups: the noop driver. The iptables driver would put rules into
# this machine's root iptables (other helpers share it) and needs br_netfilter's
# bridge-nf-call-iptables; the agent's ARP/MAC anti-spoofing (ebtables nat chains
# neutronARP-/neutronMAC-tap..., matching only our taps) stays on. The server keeps
# enable_security_group (its default), so the VIFs say port_filter=true and os-vif's
# linux_bridge plug adds no iptables rules of its own either.
write_linuxbridge_agent_conf() {
  cat >"$ETC/neutron/linuxbridge_agent.ini" <<EOF
[DEFAULT]
use_stderr = true
[agent]
polling_interval = 1
[linux_bridge]
physical_interface_mappings = $NET_PHYSNET:$NET_LINK
[vxlan]
enable_vxlan = false
[securitygroup]
firewall_driver = noop
enable_security_group = true
EOF
}

configure() {
  local s
  mkdir -p "$ETC"/{keystone,glance,placement,nova,neutron,heat,berth} "$E2E_DIR/berth"
  for s in keystone glance placement nova neutron heat; do
    chown "root:$s" "$ETC/$s"
    chmod 750 "$ETC/$s"
  done
  mkdir -p "$E2E_DIR"/glance/{images,staging,tasks} "$E2E_DIR"/nova/{instances,tmp} \
    "$E2E_DIR"/neutron/tmp "$E2E_DIR/heat"
  chown -R glance:glance "$E2E_DIR/glance"
  chown -R nova:nova "$E2E_DIR/nova"
  chown -R neutron:neutron "$E2E_DIR/neutron"
  chown -R heat:heat "$E2E_DIR/heat"
  mkdir -p /run/mysqld /var/log/keystone && chown mysql:mysql /run/mysqld

  # Glance's store and berthd's state go with the databases: a run starts from nothing.
  unmount_berth_state
  rm -rf "$E2E_DIR/berth" "$E2E_DIR"/glance/{images,staging,tasks}

  # Keystone (uwsgi; the config dir comes from OS_KEYSTONE_CONFIG_DIR).
  # New keys with the new database of every run.
  rm -rf "$ETC/keystone/fernet-keys" "$ETC/keystone/credential-keys"
  mkdir -p "$ETC/keystone/fernet-keys" "$ETC/keystone/credential-keys"
  chown keystone:keystone "$ETC/keystone/fernet-keys" "$ETC/keystone/credential-keys"
  chmod 700 "$ETC/keystone/fernet-keys" "$ETC/keystone/credential-keys"
  cat >"$ETC/keystone/keystone.conf" <<EOF
[DEFAULT]
use_stderr = true
[database]
connection = $DB://keystone:$PASS@127.0.0.1/keystone
[token]
provider = fernet
[fernet_tokens]
key_repository = $ETC/keystone/fernet-keys
[credential]
key_repository = $ETC/keystone/credential-keys
[cache]
enabled = true
backend = oslo_cache.memcache_pool
memcache_servers = 127.0.0.1:11211
EOF

  # Glance: file store; root-tar added to the disk formats (root filesystem tarballs).
  cat >"$ETC/glance/glance-api.conf" <<EOF
[DEFAULT]
use_stderr = true
bind_host = 127.0.0.1
bind_port = 9292
workers = 1
enabled_backends = fs:file
[database]
connection = $DB://glance:$PASS@127.0.0.1/glance
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $E2E_DIR/glance/images/
[os_glance_staging_store]
filesystem_store_datadir = $E2E_DIR/glance/staging/
[os_glance_tasks_store]
filesystem_store_datadir = $E2E_DIR/glance/tasks/
[image_format]
disk_formats = ami,ari,aki,vhd,vhdx,vmdk,raw,qcow2,vdi,iso,ploop,root-tar
container_formats = ami,ari,aki,bare,ovf,ova,docker,compressed
[paste_deploy]
flavor = keystone
config_file = /etc/glance/glance-api-paste.ini
$(ksat glance)
EOF

  # Placement (uwsgi; the config dir comes from OS_PLACEMENT_CONFIG_DIR).
  cat >"$ETC/placement/placement.conf" <<EOF
[DEFAULT]
use_stderr = true
[placement_database]
connection = $DB://placement:$PASS@127.0.0.1/placement
[api]
auth_strategy = keystone
$(ksat placement)
EOF

  # Nova, with Berth as the compute driver.
  cat >"$ETC/nova/nova.conf" <<EOF
[DEFAULT]
use_stderr = true
my_ip = 127.0.0.1
state_path = $E2E_DIR/nova
instances_path = $E2E_DIR/nova/instances
transport_url = rabbit://guest:guest@127.0.0.1:5672/
enabled_apis = osapi_compute
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = 8774
osapi_compute_workers = 1
compute_driver = berth.BerthDriver
allow_resize_to_same_host = true
# Tempest keeps several 1-vCPU servers alive at once; the default ratio (4.0) would cap
# this 2-CPU host at 8 and the fake driver (1 vCPU) at 4: NoValidHost, not a driver bug.
cpu_allocation_ratio = 16.0
heal_instance_info_cache_interval = -1
# The time a resized instance waits in VERIFY_RESIZE before Nova confirms it by itself.
resize_confirm_window = 0
# Spawn waits for Neutron's network-vif-plugged (the agent saw the tap) this long.
vif_plugging_timeout = 120
vif_plugging_is_fatal = true
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = /etc/nova/api-paste.ini
[api_database]
connection = $DB://nova:$PASS@127.0.0.1/nova_api
[database]
connection = $DB://nova:$PASS@127.0.0.1/nova
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = -1
[vnc]
enabled = false
[oslo_messaging_notifications]
driver = noop
[oslo_concurrency]
lock_path = $E2E_DIR/nova/tmp
[glance]
region_name = $REGION
[neutron]
endpoint_override = http://127.0.0.1:9696
auth_type = password
auth_url = $KS
project_domain_name = Default
user_domain_name = Default
project_name = service
username = neutron
password = $PASS
region_name = $REGION
$(ks_auth placement placement)
$(ks_auth service_user nova)
send_service_user_token = true
$(ksat nova)
[berth]
api_url = $BERTH_URL
token = @BERTH_TOKEN@
pass_user_token = true
# os-vif's plugins run their privileged part in a privsep daemon. Nova's default way to
# start it (sudo nova-rootwrap) only accepts config files under /etc; Debian's sudoers
# lets nova run privsep-helper directly.
[vif_plug_linux_bridge_privileged]
helper_command = sudo privsep-helper --config-file $ETC/nova/nova.conf
[vif_plug_ovs_privileged]
helper_command = sudo privsep-helper --config-file $ETC/nova/nova.conf
EOF

  # Neutron: ML2 with the flat type driver only. Without BERTH_E2E_NEUTRON no mechanism
  # driver and no agent: enough for Nova's calls with --nic none. With it, the linuxbridge
  # mechanism driver and its agent on this host (write_linuxbridge_agent_conf), and port
  # status changes sent to Nova (network-vif-plugged), which Nova waits for at spawn.
  local mech="" notify=false
  [ "$NEUTRON" = 0 ] || { mech=linuxbridge; notify=true; }
  cat >"$ETC/neutron/neutron.conf" <<EOF
[DEFAULT]
use_stderr = true
bind_host = 127.0.0.1
bind_port = 9696
core_plugin = ml2
service_plugins =
auth_strategy = keystone
transport_url = rabbit://guest:guest@127.0.0.1:5672/
api_workers = 1
rpc_workers = 0
rpc_state_report_workers = 0
notify_nova_on_port_status_changes = $notify
notify_nova_on_port_data_changes = $notify
global_physnet_mtu = $NET_MTU
api_paste_config = /etc/neutron/api-paste.ini
state_path = $E2E_DIR/neutron
[database]
connection = $DB://neutron:$PASS@127.0.0.1/neutron
[oslo_concurrency]
lock_path = $E2E_DIR/neutron/tmp
[ml2]
type_drivers = flat
tenant_network_types =
mechanism_drivers = $mech
extension_drivers = port_security
[ml2_type_flat]
flat_networks = *
# Neutron 21 (Zed) calls the Linux bridge driver and agent experimental: both refuse to
# start without this.
[experimental]
linuxbridge = true
$(ksat neutron)
$(ks_auth nova nova)
endpoint_type = public
EOF
  [ "$NEUTRON" = 0 ] || write_linuxbridge_agent_conf

  # Heat.
  cat >"$ETC/heat/heat.conf" <<EOF
[DEFAULT]
use_stderr = true
transport_url = rabbit://guest:guest@127.0.0.1:5672/
num_engine_workers = 1
stack_user_domain_name = heat
stack_domain_admin = heat_domain_admin
stack_domain_admin_password = $PASS
region_name_for_services = $REGION
[heat_api]
bind_host = 127.0.0.1
bind_port = 8004
workers = 1
[paste_deploy]
api_paste_config = /etc/heat/api-paste.ini
[database]
connection = $DB://heat:$PASS@127.0.0.1/heat
[clients_keystone]
auth_uri = $KS
[oslo_messaging_notifications]
driver = noop
$(ks_auth trustee heat)
$(ksat heat)
EOF

  write_berthd_conf
  for s in keystone glance placement nova neutron heat; do
    find "$ETC/$s" -maxdepth 1 -name '*.conf' -exec chgrp "$s" {} +
    find "$ETC/$s" -maxdepth 1 -name '*.conf' -exec chmod 640 {} +
  done
}

# ---------------------------------------------------------------------------------------
# 3. Start and initialise each service

start_infra() {
  say "MariaDB, RabbitMQ, memcached"
  start_svc mariadb mysql /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
    --skip-name-resolve --socket=/run/mysqld/mysqld.sock --pid-file=/run/mysqld/mysqld.pid
  local deadline=$((SECONDS + 120))
  until mariadb -uroot -e 'select 1' >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "MariaDB does not answer (log: $LOG/mariadb.log)"
    sleep 0.5
  done
  local d sql=""
  for d in "${DATABASES[@]}"; do
    local user=${d%%_*}
    sql+="DROP DATABASE IF EXISTS $d; CREATE DATABASE $d;"
    sql+="CREATE USER IF NOT EXISTS '$user'@'localhost' IDENTIFIED BY '$PASS';"
    sql+="CREATE USER IF NOT EXISTS '$user'@'127.0.0.1' IDENTIFIED BY '$PASS';"
    sql+="ALTER USER '$user'@'localhost' IDENTIFIED BY '$PASS';"
    sql+="ALTER USER '$user'@'127.0.0.1' IDENTIFIED BY '$PASS';"
    sql+="GRANT ALL ON $d.* TO '$user'@'localhost'; GRANT ALL ON $d.* TO '$user'@'127.0.0.1';"
  done
  mariadb -uroot -e "$sql" || die "creating the databases failed"

  # RabbitMQ's guest user, which it accepts from loopback only: every rabbitmqctl call
  # costs ~30 s here (the Erlang CLI's start-up), so the script makes no user of its own.
  # epmd started by us in the foreground, so that it is in a process group we stop
  # (RabbitMQ would otherwise start a daemonised one that outlives the run).
  export ERL_EPMD_ADDRESS=127.0.0.1
  start_svc epmd rabbitmq /usr/bin/epmd -address 127.0.0.1
  sleep 0.5
  mkdir -p /var/log/rabbitmq /run/rabbitmq && chown rabbitmq:rabbitmq /var/log/rabbitmq /run/rabbitmq
  HOME=/var/lib/rabbitmq RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT=5672 RABBITMQ_DIST_PORT=25672 \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    start_svc rabbitmq rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server
  start_svc memcached memcache /usr/bin/memcached -l 127.0.0.1 -p 11211 -U 0 -m 64
  # Its port answering means the broker is up (rabbitmqctl await_startup takes a minute more).
  deadline=$((SECONDS + 240))
  until (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || die "RabbitMQ did not start (log: $LOG/rabbitmq.log)"
    alive_leader "$(cat "$RUN/rabbitmq.pid")" || die "RabbitMQ exited (log: $LOG/rabbitmq.log)"
    sleep 0.5
  done
}

uwsgi_app() {  # uwsgi_app NAME USER PORT WSGI_FILE
  start_svc "$1" "$2" /usr/bin/uwsgi --plugin python3 --http-socket "127.0.0.1:$3" \
    --wsgi-file "$4" --master --processes 2 --threads 4 --enable-threads --lazy-apps \
    --die-on-term --buffer-size 65535 --add-header "Connection: close" --chdir "/var/lib/$2"
}

start_keystone() {
  say "Keystone"
  export OS_KEYSTONE_CONFIG_DIR=$ETC/keystone  # for uwsgi; keystone-manage reads --config-file
  local km=(as keystone keystone-manage --config-file "$ETC/keystone/keystone.conf")
  {
    "${km[@]}" db_sync &&
      "${km[@]}" fernet_setup --keystone-user keystone --keystone-group keystone &&
      "${km[@]}" credential_setup --keystone-user keystone --keystone-group keystone
  } >>"$LOG/db.log" 2>&1 || die "keystone-manage (log: $LOG/db.log)"
  "${km[@]}" bootstrap --bootstrap-password "$PASS" \
    --bootstrap-admin-url "$KS/v3/" --bootstrap-internal-url "$KS/v3/" \
    --bootstrap-public-url "$KS/v3/" --bootstrap-region-id "$REGION" >>"$LOG/db.log" 2>&1 ||
    die "keystone-manage bootstrap (log: $LOG/db.log)"
  uwsgi_app keystone keystone 5000 /usr/bin/keystone-wsgi-public
  wait_http keystone "$KS/v3"
  $PY "$HERE/e2e_helper.py" keystone-setup --password "$PASS" --region "$REGION"
}

start_openstack() {
  say "Glance, Placement, Neutron"
  as glance glance-manage --config-file "$ETC/glance/glance-api.conf" db_sync >>"$LOG/db.log" 2>&1 ||
    die "glance db_sync (log: $LOG/db.log)"
  start_svc glance glance /usr/bin/glance-api --config-file "$ETC/glance/glance-api.conf"
  export OS_PLACEMENT_CONFIG_DIR=$ETC/placement
  as placement placement-manage --config-file "$ETC/placement/placement.conf" db sync >>"$LOG/db.log" 2>&1 || die "placement db sync"
  uwsgi_app placement placement 8778 /usr/bin/placement-api
  local neutron_conf=(--config-file "$ETC/neutron/neutron.conf")
  as neutron neutron-db-manage "${neutron_conf[@]}" upgrade head >>"$LOG/db.log" 2>&1 ||
    die "neutron-db-manage (log: $LOG/db.log)"
  start_svc neutron neutron /usr/bin/neutron-server "${neutron_conf[@]}"
  [ "$NEUTRON" = 0 ] || start_linuxbridge_agent

  say "Nova database"
  local nconf=(--config-file "$ETC/nova/nova.conf")
  {
    as nova nova-manage "${nconf[@]}" api_db sync &&
      as nova nova-manage "${nconf[@]}" cell_v2 map_cell0 &&
      as nova nova-manage "${nconf[@]}" cell_v2 create_cell --name cell1 &&
      as nova nova-manage "${nconf[@]}" db sync
  } >>"$LOG/db.log" 2>&1 || die "nova-manage (log: $LOG/db.log)"

  wait_http glance http://127.0.0.1:9292/
  wait_http placement http://127.0.0.1:8778/
  wait_http neutron http://127.0.0.1:9696/
}

start_berthd() {
  say "berthd"
  [ -x "$BUILD_DIR/driver/server/berthd" ] || {
    echo "building berthd into $BUILD_DIR (build dependencies: scripts/deps.sh)"
    "$REPO/scripts/deps.sh"
    BERTH_BUILD_DIR=$BUILD_DIR "$REPO/scripts/build.sh" berthd berth
  }
  mkdir -p "$E2E_DIR/berth/state" "$E2E_DIR/berth/run"
  start_svc berthd root "$BUILD_DIR/driver/server/berthd" --config "$ETC/berth/berthd.conf"
  wait_http berthd "$BERTH_URL/healthz" 60
  local token
  token=$(cat "$E2E_DIR/berth/admin-token")
  sed -i "s|@BERTH_TOKEN@|$token|" "$ETC/nova/nova.conf"
  "$REPO/driver/nova/install.sh" >/dev/null
}

start_nova() {
  say "Nova"
  local nconf=(--config-file "$ETC/nova/nova.conf")
  start_svc nova-api nova /usr/bin/nova-api "${nconf[@]}"
  start_svc nova-conductor nova /usr/bin/nova-conductor "${nconf[@]}"
  start_svc nova-scheduler nova /usr/bin/nova-scheduler "${nconf[@]}"
  start_svc nova-compute nova /usr/bin/nova-compute "${nconf[@]}"
  wait_http nova-api http://127.0.0.1:8774/
  # The compute service registers itself, then discover_hosts maps it into cell1.
  local deadline=$((SECONDS + 180)) host
  until openstack compute service list --service nova-compute -f value -c State 2>/dev/null |
    grep -q up; do
    [ $SECONDS -lt $deadline ] || {
      tail -40 "$LOG/nova-compute.log" >&2
      die "nova-compute did not come up (log: $LOG/nova-compute.log)"
    }
    alive_leader "$(cat "$RUN/nova-compute.pid")" || {
      tail -40 "$LOG/nova-compute.log" >&2
      die "nova-compute exited"
    }
    sleep 2
  done
  as nova nova-manage "${nconf[@]}" cell_v2 discover_hosts --verbose >>"$LOG/db.log" 2>&1
  host=$(openstack hypervisor list -f value -c 'Hypervisor Hostname' | head -1)
  echo "hypervisor: $host ($(openstack hypervisor list -f value -c 'Hypervisor Type' | head -1))"
  # Neutron's first GET /v2.0/ports on a fresh worker fails once; list networks first.
  openstack network list >/dev/null 2>&1 || true
}

# A second nova-compute with Nova's fake driver (host fake-host): the baseline for the
# create -> ACTIVE figure.
start_fake_compute() {
  say "nova-compute with fake.SmallFakeDriver (baseline)"
  printf '[DEFAULT]\nhost = fake-host\ncompute_driver = fake.SmallFakeDriver\n' \
    >"$ETC/nova/fake-compute.conf"
  chgrp nova "$ETC/nova/fake-compute.conf"
  local nconf=(--config-file "$ETC/nova/nova.conf")
  start_svc nova-compute-fake nova /usr/bin/nova-compute "${nconf[@]}" \
    --config-file "$ETC/nova/fake-compute.conf"
  local deadline=$((SECONDS + 240))
  until openstack compute service list --service nova-compute --host fake-host -f value \
    -c State 2>/dev/null | grep -q up; do
    [ $SECONDS -lt $deadline ] || die "the fake nova-compute did not come up"
    sleep 2
  done
  as nova nova-manage "${nconf[@]}" cell_v2 discover_hosts >>"$LOG/db.log" 2>&1
  openstack compute service set --enable fake-host nova-compute  # disabled by a run before
}

start_heat() {
  say "Heat"
  local hconf=(--config-file "$ETC/heat/heat.conf")
  as heat heat-manage "${hconf[@]}" db_sync >>"$LOG/db.log" 2>&1 || die "heat-manage db_sync"
  start_svc heat-api heat /usr/bin/heat-api "${hconf[@]}"
  start_svc heat-engine heat /usr/bin/heat-engine "${hconf[@]}"
  wait_http heat-api http://127.0.0.1:8004/
}

# ---------------------------------------------------------------------------------------
# 4. The test

# Fields of berthd's view of an instance: berth_field UUID FIELD
berth_field() {
  berth_api GET "/v1/instances/$1" | $PY -c "import json,sys; print(json.load(sys.stdin).get('$2'))"
}
cg() { cat "/sys/fs/cgroup/$1/$CGROUP_PARENT/$2/$3" 2>/dev/null || echo missing; }

expect_eq() {  # expect_eq WHAT GOT WANT
  [ "$2" = "$3" ] || die "$1: got '$2', want '$3'"
  echo "  ok: $1 = $2"
}

check_container() {  # check_container UUID POWER_STATE_NAME FREEZER
  local uuid=$1 pid
  expect_eq "berthd power state" "$(berth_field "$uuid" power_state_name)" "$2"
  if [ "$2" = SHUTDOWN ]; then return 0; fi
  pid=$(berth_field "$uuid" pid)
  if [ -z "$pid" ] || [ "$pid" = None ] || ! kill -0 "$pid" 2>/dev/null; then
    die "instance $uuid: its process $pid is not running"
  fi
  expect_eq "freezer.state" "$(cg freezer "$uuid" freezer.state)" "$3"
  LAST_PID=$pid
}

lifecycle_step() {  # lifecycle_step NAME STATUS BERTH_STATE FREEZER CLI-ARGS...
  local name=$1 status=$2 bstate=$3 freezer=$4 t0 secs
  shift 4
  say "$name"
  t0=$(now)
  openstack "$@" >/dev/null || die "openstack $* failed"
  secs=$($PY "$HERE/e2e_helper.py" wait-server "$SERVER" "$status" --since "$t0" --timeout 300) ||
    die "$name: server did not reach $status"
  figure "$name (CLI call -> $status)" "$secs" s
  check_container "$SERVER" "$bstate" "$freezer"
}

run_test() {
  local flavor_small=berth.small flavor_big=berth.big image_id t0 secs
  BERTH_HOST=$(openstack compute service list --service nova-compute -f value -c Host |
    grep -vx fake-host | head -1)
  say "flavors and the demo image"
  openstack flavor delete "$flavor_small" "$flavor_big" >/dev/null 2>&1 || true
  openstack flavor create --vcpus 1 --ram 128 --disk 1 "$flavor_small" >/dev/null
  openstack flavor create --vcpus 2 --ram 256 --disk 1 "$flavor_big" >/dev/null
  $PY "$HERE/e2e_helper.py" busybox-archive "$E2E_DIR/busybox-docker.tar"
  t0=$(now)
  image_id=$(openstack image create --container-format docker --disk-format raw \
    --file "$E2E_DIR/busybox-docker.tar" --public -f value -c id berth-e2e-busybox)
  figure "glance image upload" "$(since "$t0")" s
  echo "Glance image $image_id"
  if [ "$PRELOAD" = 1 ]; then
    # Until berthd fetches from Glance itself: the same archive, named by the Glance id.
    berth_api POST /v1/images "{\"path\": \"$E2E_DIR/busybox-docker.tar\", \"format\": \"docker-archive\", \"name\": \"$image_id\"}" >/dev/null ||
      die "importing the image into berthd"
    echo "preloaded into berthd as $image_id (BERTH_E2E_PRELOAD=1)"
  fi
  if [ "$LIFECYCLE" = 0 ]; then
    echo "BERTH_E2E_LIFECYCLE=0: the one-server lifecycle test skipped"
    return 0
  fi

  say "openstack server create"
  t0=$(now)
  SERVER=$(openstack server create --nic none --flavor "$flavor_small" --image "$image_id" \
    --availability-zone "nova:$BERTH_HOST" -f value -c id berth-e2e-1)
  local cli
  cli=$(since "$t0")
  secs=$($PY "$HERE/e2e_helper.py" wait-server "$SERVER" ACTIVE --since "$t0" --timeout 300) || {
    openstack server show "$SERVER" -f value -c fault >&2 || true
    die "server $SERVER did not become ACTIVE"
  }
  figure "server create: CLI call returned" "$cli" s
  figure "server create -> ACTIVE (from the CLI call)" "$secs" s
  local spawn_ms
  spawn_ms=$(grep "instance $SERVER .* spawned from" "$LOG/berthd.log" |
    sed -E 's/.* spawned from .* in ([0-9.]+) ms.*/\1/' | head -1 || true)
  figure "berthd spawn (its log)" "${spawn_ms:-?}" ms
  berth_api GET /metrics | grep '^berth_spawn_seconds_\(sum\|count\)' | tee -a "$FIGURES"
  check_container "$SERVER" RUNNING THAWED
  expect_eq "memory limit (128 MiB flavor)" "$(cg memory "$SERVER" memory.limit_in_bytes)" \
    $((128 * 1024 * 1024))
  local console
  console=$(openstack console log show "$SERVER")
  grep -q "booted" <<<"$console" || die "console log lacks the greeting: $console"
  echo "  ok: console log: $(grep booted <<<"$console" | head -1)"

  lifecycle_step "stop" SHUTOFF SHUTDOWN "" server stop "$SERVER"
  lifecycle_step "start" ACTIVE RUNNING THAWED server start "$SERVER"
  local before=$LAST_PID
  lifecycle_step "reboot soft" ACTIVE RUNNING THAWED server reboot --soft "$SERVER"
  [ "$LAST_PID" != "$before" ] || die "soft reboot kept pid $before"
  before=$LAST_PID
  lifecycle_step "reboot hard" ACTIVE RUNNING THAWED server reboot --hard "$SERVER"
  [ "$LAST_PID" != "$before" ] || die "hard reboot kept pid $before"
  lifecycle_step "pause" PAUSED PAUSED FROZEN server pause "$SERVER"
  lifecycle_step "unpause" ACTIVE RUNNING THAWED server unpause "$SERVER"
  lifecycle_step "suspend" SUSPENDED SUSPENDED FROZEN server suspend "$SERVER"
  lifecycle_step "resume" ACTIVE RUNNING THAWED server resume "$SERVER"

  lifecycle_step "resize to $flavor_big" VERIFY_RESIZE RUNNING THAWED \
    server resize --flavor "$flavor_big" "$SERVER"
  expect_eq "memory limit after resize (256 MiB flavor)" \
    "$(cg memory "$SERVER" memory.limit_in_bytes)" $((256 * 1024 * 1024))
  lifecycle_step "resize confirm" ACTIVE RUNNING THAWED server resize confirm "$SERVER"

  say "snapshot"
  t0=$(now)
  local snap
  openstack server image create --name berth-e2e-snap "$SERVER" >/dev/null
  snap=$(openstack image show berth-e2e-snap -f value -c id)
  echo "snapshot image $snap"
  if [ "$PRELOAD" = 1 ]; then
    # berthd commits the snapshot; the upload to Glance is the glance_adapter's part.
    secs=$($PY "$HERE/e2e_helper.py" wait-server "$SERVER" ACTIVE --since "$t0") ||
      die "snapshot: server did not come back to ACTIVE"
    figure "snapshot (CLI call -> task done)" "$secs" s
    echo "  Glance image status: $(openstack image show "$snap" -f value -c status)"
    if berth_api GET /v1/images | grep -q '"berth-e2e-snap"'; then
      echo "  ok: berthd committed the snapshot (image berth-e2e-snap in its store)"
    else
      die "berthd has no image berth-e2e-snap after the snapshot"
    fi
  else
    secs=$($PY "$HERE/e2e_helper.py" wait-image "$snap" active --since "$t0" --timeout 600) ||
      die "snapshot image $snap did not become active"
    figure "snapshot (CLI call -> Glance image active)" "$secs" s
    say "a second server from the snapshot"
    t0=$(now)
    local second
    second=$(openstack server create --nic none --flavor "$flavor_small" --image "$snap" \
      -f value -c id berth-e2e-2)
    secs=$($PY "$HERE/e2e_helper.py" wait-server "$second" ACTIVE --since "$t0") ||
      die "server from the snapshot did not become ACTIVE"
    figure "server from snapshot -> ACTIVE" "$secs" s
    check_container "$second" RUNNING THAWED
    openstack server delete --wait "$second"
  fi

  say "create -> ACTIVE -> delete through the compute API (no CLI start-up in the figure)"
  $PY "$HERE/e2e_helper.py" boot-timed --image "$image_id" --flavor "$flavor_small" \
    --host "$BERTH_HOST" --label berth --rounds 5 | tee -a "$FIGURES" ||
    die "boot through the API failed"

  say "delete"
  t0=$(now)
  openstack server delete "$SERVER"
  secs=$($PY "$HERE/e2e_helper.py" wait-server "$SERVER" GONE --since "$t0") ||
    die "server $SERVER not deleted"
  figure "delete (CLI call -> gone)" "$secs" s
  local left
  left=$(berth_api GET /v1/instances | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["instances"]))')
  expect_eq "berthd instances left" "$left" 0
  berth_leftovers || die "berthd left mounts or cgroups (above)"
  echo "  ok: no mounts, no cgroups left"
  openstack image delete "$snap" || true
}

# The same API calls on the same OpenStack, on a compute service whose driver does nothing:
# the difference is Berth's part. Started only now (and disabled after) so that the
# scheduler cannot put the lifecycle test's server or the stack's on it.
run_fake_baseline() {
  start_fake_compute
  $PY "$HERE/e2e_helper.py" boot-timed --image "$(openstack image show berth-e2e-busybox -f value -c id)" --flavor berth.small \
    --host fake-host --label fake.SmallFakeDriver --rounds 5 | tee -a "$FIGURES" ||
    die "boot on the fake driver failed"
  openstack compute service set --disable fake-host nova-compute
  stop_svc nova-compute-fake
}

run_heat() {
  say "Heat: a one-server stack"
  local tmpl=$HERE/heat_one_server.yaml t0 secs t
  # The documented templates, when this tree has them: they must at least validate.
  for t in "$REPO"/heat_templates/*.yaml; do
    [ -f "$t" ] || continue
    openstack orchestration template validate -t "$t" >/dev/null || die "$t does not validate"
    echo "  ok: $t validates"
  done
  openstack orchestration template validate -t "$tmpl" >/dev/null || die "template validate"
  echo "  ok: template validates"
  t0=$(now)
  openstack stack create --wait -t "$tmpl" --parameter image=berth-e2e-busybox \
    --parameter flavor=berth.small berth-e2e-stack >/dev/null || {
    openstack stack show berth-e2e-stack -f value -c stack_status_reason >&2 || true
    die "stack create failed"
  }
  figure "heat stack create -> CREATE_COMPLETE" "$(since "$t0")" s
  local server
  server=$(openstack stack resource show berth-e2e-stack server -f value -c physical_resource_id)
  check_container "$server" RUNNING THAWED
  t0=$(now)
  openstack stack delete --yes --wait berth-e2e-stack >/dev/null || die "stack delete failed"
  figure "heat stack delete" "$(since "$t0")" s
  local left
  left=$(berth_api GET /v1/instances | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["instances"]))')
  expect_eq "berthd instances left after the stack" "$left" 0
}

# The glance_adapter tests with this setup's real Keystone and Glance (the BERTH_REAL_*
# variables; without them the same tests skip). They run as admin: token validation needs
# the admin role.
run_glance_real() {
  say "glance_adapter tests against the real Keystone and Glance"
  local bin=${BERTH_E2E_GLANCE_TEST_BIN:-$BUILD_DIR/tests/berth_integration_glance}
  [ -x "$bin" ] || ninja -C "$BUILD_DIR" -j2 berth_integration_glance ||
    die "cannot build $bin (configure $BUILD_DIR first, see the README)"
  local out=$LOG/glance-real.log
  BERTH_REAL_KEYSTONE_URL=$KS/v3 BERTH_REAL_USERNAME=admin BERTH_REAL_PASSWORD=$PASS \
    BERTH_REAL_PROJECT=admin BERTH_REAL_REGION=$REGION \
    "$bin" --gtest_filter='RealOpenStackTest.*' >"$out" 2>&1 || {
    tail -40 "$out" >&2
    die "glance_adapter tests against the real services failed (log: $out)"
  }
  grep -E '^\[  (PASSED|SKIPPED|FAILED) ' "$out" | sed 's/^/  /'
  # A skip here means the variables did not reach the tests: that is a failure too.
  ! grep -q '^\[  SKIPPED \]' "$out" || die "real-service tests skipped (log: $out)"
  grep -q '^\[  PASSED  \] [1-9]' "$out" || die "no real-service test ran (log: $out)"
}

# ---------------------------------------------------------------------------------------
# 5. Neutron (BERTH_E2E_NEUTRON): servers on a real network, through the Linux bridge agent

berth_exec() {  # berth_exec UUID SHELL-COMMAND: its stdout; fails on a non-zero exit
  local body
  body=$($PY -c 'import json, sys; print(json.dumps({"command": ["/bin/sh", "-c", sys.argv[1]]}))' "$2")
  berth_api POST "/v1/instances/$1/exec" "$body" | $PY -c '
import json, sys
r = json.load(sys.stdin)
sys.stdout.write(r.get("stdout") or "")
if r.get("exit_code") != 0:
    sys.stderr.write("berthd exec: exit %s: %s\n" % (r.get("exit_code"), r.get("stderr") or r))
    sys.exit(1)'
}

hostping() { busybox ping -c 2 -W 2 "$1" >/dev/null; }

make_network() {
  say "Neutron: flat provider network $NET_NAME on $NET_PHYSNET ($NET_LINK)"
  wait_agent_alive
  NET_ID=$(openstack network show "$NET_NAME" -f value -c id 2>/dev/null || true)
  if [ -z "$NET_ID" ]; then
    NET_ID=$(openstack network create --provider-network-type flat \
      --provider-physical-network "$NET_PHYSNET" --share -f value -c id "$NET_NAME")
    # No DHCP: Berth configures the port's fixed IP, routes and MTU itself. The gateway is
    # the host's address on the provider link.
    openstack subnet create --network "$NET_ID" --subnet-range "$NET_CIDR" \
      --gateway "$NET_HOST_IP" --allocation-pool "start=${NET_CIDR%.*}.10,end=${NET_CIDR%.*}.250" \
      --no-dhcp "$NET_NAME-v4" >/dev/null
  fi
  echo "$NET_ID" >"$RUN/net-id"  # for the teardown: its bridge, should a run stop half-way
  echo "network $NET_ID, bridge brq${NET_ID:0:11}, MTU $(openstack network show "$NET_ID" -f value -c mtu)"
}

drop_network() {
  say "Neutron: delete $NET_NAME"
  local br=brq${NET_ID:0:11} deadline
  openstack network delete "$NET_ID" || die "network delete"
  # The agent deletes the network's bridge when neutron-server tells it (network_delete).
  deadline=$((SECONDS + 30))
  while [ -e "/sys/class/net/$br" ]; do
    [ $SECONDS -lt $deadline ] || die "bridge $br still there 30 s after the network's delete"
    sleep 0.5
  done
  echo "  ok: the agent removed $br"
  [ ! -e "/sys/class/net/$NET_LINK/master" ] || die "$NET_LINK still enslaved"
}

# check_vif SERVER: the Neutron port is ACTIVE and bound to this host's agent; its tap
# (the veth's host end, named as the agent expects) is on the network's bridge with our
# link; inside, eth0 has the port's MAC, fixed IP and the network's MTU. Sets VIF_IP,
# VIF_DEV, VIF_NETNS (the instance's network namespace, for the leftover check).
check_vif() {
  local server=$1 port mac ip status vif_type host net mtu inside pid
  read -r port mac ip status vif_type host net mtu < <($PY "$HERE/e2e_helper.py" server-port "$server") ||
    die "server $server: no port"
  expect_eq "port $port status" "$status" ACTIVE
  expect_eq "port binding:vif_type" "$vif_type" bridge
  expect_eq "port binding:host_id" "$host" "$BERTH_HOST"
  VIF_DEV=tap${port:0:11}
  [ -e "/sys/class/net/$VIF_DEV" ] || die "no host device $VIF_DEV (the agent binds tap + port id[:11])"
  ip -d -o link show dev "$VIF_DEV" | grep -q ' veth ' || die "$VIF_DEV is not a veth"
  expect_eq "$VIF_DEV on bridge" "$(basename "$(readlink "/sys/class/net/$VIF_DEV/master")")" "brq${net:0:11}"
  expect_eq "$NET_LINK on bridge (the agent's doing)" \
    "$(basename "$(readlink "/sys/class/net/$NET_LINK/master")")" "brq${net:0:11}"
  expect_eq "$VIF_DEV MTU" "$(cat "/sys/class/net/$VIF_DEV/mtu")" "$mtu"
  # shellcheck disable=SC2016  # expanded inside the instance
  inside=$(berth_exec "$server" 'cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu; ip -o -4 addr show dev eth0 | awk "{print \$4}"; ip route show default') ||
    die "exec in $server"
  expect_eq "eth0 MAC inside" "$(sed -n 1p <<<"$inside")" "$mac"
  expect_eq "eth0 MTU inside" "$(sed -n 2p <<<"$inside")" "$mtu"
  expect_eq "eth0 address inside" "$(sed -n 3p <<<"$inside")" "$ip/${NET_CIDR#*/}"
  expect_eq "default route inside" "$(sed -n 4p <<<"$inside" | awk '{print $3}')" "$NET_HOST_IP"
  # The agent bound the tap: its anti-spoofing chains allow only the port's MAC and IP.
  # (ebtables may print the MAC without leading zeros: compare it normalised)
  ebtables -t nat -L "neutronMAC-$VIF_DEV" 2>/dev/null | sed -n 's/.*--among-src \([^ ,]*\).*/\1/p' |
    $PY -c 'import sys; m = [int(x, 16) for x in sys.argv[1].split(":")]; sys.exit(not any([int(x, 16) for x in l.strip().split(":")] == m for l in sys.stdin))' "$mac" ||
    die "no ebtables MAC chain for $VIF_DEV with $mac"
  ebtables -t nat -L "neutronARP-$VIF_DEV" 2>/dev/null | grep -q -- "--arp-ip-src $ip " ||
    die "no ebtables ARP chain for $VIF_DEV with $ip"
  echo "  ok: the agent's anti-spoofing chains neutronMAC-/neutronARP-$VIF_DEV allow $mac, $ip"
  pid=$(berth_field "$server" pid)
  VIF_NETNS=$(readlink "/proc/$pid/ns/net")
  VIF_IP=$ip
  VIF_PORT=$port
}

# An HTTP server inside (busybox httpd, started through berthd's exec) that names its
# instance.
start_httpd() {  # start_httpd SERVER
  berth_exec "$1" "mkdir -p /tmp/www && echo \"hello from $1\" >/tmp/www/index.html && httpd -p 8080 -h /tmp/www" ||
    die "httpd in $1"
}

wait_http_body() {  # wait_http_body URL PATTERN [SECONDS]: curl from the host until it matches
  local deadline=$((SECONDS + ${3:-30})) body=""
  while :; do
    body=$(curl -s -m 5 "$1" 2>/dev/null || true)
    grep -q -- "$2" <<<"$body" && break
    [ $SECONDS -lt $deadline ] || die "$1 did not answer with '$2' (last answer: ${body:0:300})"
    sleep 0.5
  done
  printf '%s' "$body"
}

run_network_test() {
  local image_id a b t0 secs ip_a ip_b dev_a dev_b ns_a ns_b n
  image_id=$(openstack image show berth-e2e-busybox -f value -c id)
  make_network

  say "openstack server create --network $NET_NAME (two servers)"
  for n in a b; do
    t0=$(now)
    local id
    id=$(openstack server create --network "$NET_ID" --flavor berth.small --image "$image_id" \
      --availability-zone "nova:$BERTH_HOST" -f value -c id "berth-e2e-net-$n")
    secs=$($PY "$HERE/e2e_helper.py" wait-server "$id" ACTIVE --since "$t0" --timeout 300) || {
      openstack server show "$id" -f value -c fault >&2 || true
      tail -20 "$LOG/nova-compute.log" >&2
      die "server $id (--network) did not become ACTIVE"
    }
    figure "server create --network -> ACTIVE (CLI call, $n)" "$secs" s
    if [ "$n" = a ]; then a=$id; else b=$id; fi
  done

  say "the port, the tap and eth0 of each"
  check_vif "$a"
  ip_a=$VIF_IP dev_a=$VIF_DEV ns_a=$VIF_NETNS FIRST_PORT=$VIF_PORT
  check_vif "$b"
  ip_b=$VIF_IP dev_b=$VIF_DEV ns_b=$VIF_NETNS

  say "the host reaches them; they reach each other"
  hostping "$ip_a" || die "host cannot ping $ip_a"
  hostping "$ip_b" || die "host cannot ping $ip_b"
  echo "  ok: host pings $ip_a and $ip_b"
  start_httpd "$a"
  start_httpd "$b"
  wait_http_body "http://$ip_a:8080/" "hello from $a" 10 >/dev/null
  wait_http_body "http://$ip_b:8080/" "hello from $b" 10 >/dev/null
  echo "  ok: host GETs the httpd in each"
  berth_exec "$a" "timeout 10 wget -qO- http://$ip_b:8080/" | grep -q "hello from $b" ||
    die "$a cannot GET $ip_b:8080"
  berth_exec "$b" "timeout 10 wget -qO- http://$ip_a:8080/" | grep -q "hello from $a" ||
    die "$b cannot GET $ip_a:8080"
  echo "  ok: each GETs the other's httpd"
  if berth_exec "$a" "ping -c 2 -W 2 $ip_b" >/dev/null 2>&1; then
    echo "  ok: $ip_a pings $ip_b"
  else
    echo "  note: ping inside the instance refused (no NET_RAW, ping_group_range); TCP passed"
  fi

  attach_detach_test "$a"

  say "create -> ACTIVE -> delete through the compute API: with a network, and without"
  $PY "$HERE/e2e_helper.py" boot-timed --image "$image_id" --flavor berth.small \
    --host "$BERTH_HOST" --label "berth --network" --rounds 3 --network "$NET_ID" |
    tee -a "$FIGURES" || die "boot with a network through the API failed"
  $PY "$HERE/e2e_helper.py" boot-timed --image "$image_id" --flavor berth.small \
    --host "$BERTH_HOST" --label "berth --nic none" --rounds 3 |
    tee -a "$FIGURES" || die "boot without a network through the API failed"

  say "delete both: no tap, bridge port, namespace, ebtables chain or port left"
  t0=$(now)
  openstack server delete --wait "$a" "$b" || die "server delete"
  figure "delete of two servers with ports (CLI --wait)" "$(since "$t0")" s
  local d
  for d in "$dev_a" "$dev_b"; do
    [ ! -e "/sys/class/net/$d" ] || die "$d left on the host"
  done
  expect_eq "ports on brq${NET_ID:0:11}" \
    "$(find "/sys/class/net/brq${NET_ID:0:11}/brif" -mindepth 1 -printf '%f ')" "$NET_LINK "
  local f deadline
  for f in /proc/[0-9]*/ns/net; do
    case "$(readlink "$f" 2>/dev/null || true)" in
      "$ns_a" | "$ns_b") die "$f: a process is still in an instance's network namespace" ;;
    esac
  done
  echo "  ok: no tap, no bridge port, no process in the instances' network namespaces"
  # The agent's next poll (1 s) sees the taps gone and removes their anti-spoofing chains.
  deadline=$((SECONDS + 20))
  while ebtables -t nat -L 2>/dev/null | grep -q -e "$dev_a" -e "$dev_b"; do
    [ $SECONDS -lt $deadline ] ||
      die "ebtables chains of $dev_a/$dev_b left: $(ebtables -t nat -L | grep -e "$dev_a" -e "$dev_b")"
    sleep 0.5
  done
  echo "  ok: the agent removed their ebtables chains"
  n=$(openstack port list --network "$NET_ID" --device-owner compute:nova -f value -c ID | wc -l)
  expect_eq "compute ports left on $NET_NAME" "$n" 0
  expect_eq "berthd instances left" "$(berth_api GET /v1/instances | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["instances"]))')" 0
  berth_leftovers || die "berthd left mounts or cgroups (above)"
  echo "  ok: no mounts, no cgroups left"
}

# attach_interface / detach_interface on a running server: a second port on the same
# network becomes eth1 inside (its MAC and IP; the first port keeps the default route),
# the agent binds its tap, the host reaches it; removing the port removes eth1 and the tap.
attach_detach_test() {  # attach_detach_test SERVER
  local server=$1 port mac ip status deadline inside dev t0
  say "attach_interface / detach_interface on a running server"
  t0=$(now)
  openstack server add network "$server" "$NET_ID" || die "server add network"
  deadline=$((SECONDS + 60))
  while :; do
    read -r port mac ip status < <($PY "$HERE/e2e_helper.py" server-ports "$server" |
      grep -v "^${FIRST_PORT:-none} " | head -1) || true
    [ "${status:-}" != ACTIVE ] || break
    [ $SECONDS -lt $deadline ] || die "the attached port of $server is not ACTIVE: ${port:-none} ${status:-}"
    sleep 0.5
  done
  figure "attach_interface (CLI call -> port ACTIVE)" "$(since "$t0")" s
  dev=tap${port:0:11}
  expect_eq "$dev on bridge" "$(basename "$(readlink "/sys/class/net/$dev/master")")" "brq${NET_ID:0:11}"
  # shellcheck disable=SC2016  # expanded inside the instance
  inside=$(berth_exec "$server" 'cat /sys/class/net/eth1/address; ip -o -4 addr show dev eth1 | awk "{print \$4}"; ip route | grep -c ^default') ||
    die "exec in $server"
  expect_eq "eth1 MAC inside" "$(sed -n 1p <<<"$inside")" "$mac"
  expect_eq "eth1 address inside" "$(sed -n 2p <<<"$inside")" "$ip/${NET_CIDR#*/}"
  expect_eq "default routes inside" "$(sed -n 3p <<<"$inside")" 1
  hostping "$ip" || die "host cannot ping the attached address $ip"
  echo "  ok: host pings $ip (eth1)"
  t0=$(now)
  openstack server remove port "$server" "$port" || die "server remove port"
  deadline=$((SECONDS + 60))
  while [ -e "/sys/class/net/$dev" ] || berth_exec "$server" 'test -e /sys/class/net/eth1' 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || die "eth1/$dev still there 60 s after detach"
    sleep 0.5
  done
  figure "detach_interface (CLI call -> eth1 and tap gone)" "$(since "$t0")" s
  echo "  ok: eth1 gone inside, $dev gone on the host"
}

# heat_templates/images: built (when a source is newer than the last build), uploaded.
heat_images() {
  say "Heat images: build (heat_templates/images/build.sh) and upload"
  local t0 src=$REPO/heat_templates/images
  t0=$(now)
  if [ ! -f "$IMAGES_DIR/berth-mq.tar" ] ||
    [ -n "$(find "$src" -newer "$IMAGES_DIR/berth-mq.tar" -type f | head -1)" ]; then
    "$src/build.sh" --out "$IMAGES_DIR" >>"$LOG/heat-images.log" 2>&1 ||
      die "build.sh failed (log: $LOG/heat-images.log)"
    figure "heat images build (build.sh, 5 images)" "$(since "$t0")" s
  else
    echo "images in $IMAGES_DIR are up to date"
  fi
  t0=$(now)
  "$src/upload.sh" --dir "$IMAGES_DIR" --public >>"$LOG/heat-images.log" 2>&1 ||
    die "upload.sh failed (log: $LOG/heat-images.log)"
  figure "heat images upload to Glance (upload.sh)" "$(since "$t0")" s
}

stack_create() {  # stack_create NAME TEMPLATE PARAMETER...
  local name=$1 tmpl=$2 t0 args=()
  shift 2
  for p in "$@"; do args+=(--parameter "$p"); done
  openstack stack delete --yes --wait "$name" >/dev/null 2>&1 || true
  t0=$(now)
  openstack stack create --wait -t "$tmpl" "${args[@]}" "$name" >/dev/null || {
    openstack stack show "$name" -f value -c stack_status_reason >&2 || true
    openstack stack resource list -n 3 "$name" -f value -c resource_name -c resource_status \
      -c resource_status_reason >&2 || true
    tail -20 "$LOG/nova-compute.log" >&2
    die "stack $name: create failed"
  }
  figure "heat $name -> CREATE_COMPLETE" "$(since "$t0")" s
}

stack_output() { openstack stack output show "$1" "$2" -f value -c output_value; }

stack_delete() {  # stack_delete NAME: and nothing of it left
  local t0 n
  t0=$(now)
  openstack stack delete --yes --wait "$1" >/dev/null || die "stack $1: delete failed"
  figure "heat $1 delete" "$(since "$t0")" s
  n=$(openstack server list --all-projects -f value -c ID | wc -l)
  expect_eq "servers left after $1" "$n" 0
  n=$(openstack port list --network "$NET_ID" --device-owner compute:nova -f value -c ID | wc -l)
  expect_eq "ports left after $1" "$n" 0
  expect_eq "berthd instances left after $1" "$(berth_api GET /v1/instances | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["instances"]))')" 0
  berth_leftovers || die "berthd left mounts or cgroups after $1 (above)"
  if ls -d /sys/class/net/tap* >/dev/null 2>&1; then
    die "tap devices left after $1: $(ls -d /sys/class/net/tap*)"
  fi
  echo "  ok: no server, port, container, mount, cgroup or tap left"
}

run_heat_neutron() {
  heat_images
  local url status jobs body id t0 secs

  say "Heat: single_server.yaml on $NET_NAME"
  stack_create berth-e2e-single "$REPO/heat_templates/single_server.yaml" \
    "network=$NET_NAME" flavor=berth.small "title=Berth e2e single server"
  url=$(stack_output berth-e2e-single url)
  echo "output url: $url"
  wait_http_body "$url" "<h1>Berth e2e single server</h1>" 30 >/dev/null
  echo "  ok: $url answers with the page"
  stack_delete berth-e2e-single

  say "Heat: multi_tier.yaml on $NET_NAME"
  stack_create berth-e2e-multi "$REPO/heat_templates/multi_tier.yaml" \
    "network=$NET_NAME" flavor=berth.small worker_count=2 "title=Berth e2e multi tier"
  url=$(stack_output berth-e2e-multi url)
  status=$(stack_output berth-e2e-multi status_url)
  jobs=$(stack_output berth-e2e-multi jobs_url)
  echo "outputs: url $url, status_url $status, jobs_url $jobs"
  stack_output berth-e2e-multi addresses
  wait_http_body "$url" "<h1>Berth e2e multi tier</h1>" 30 >/dev/null
  echo "  ok: the front end answers at $url"
  # Through the front end to the API, which asks the database, the queue and (through the
  # queue) sees both workers.
  t0=$(now)
  body=$(wait_http_body "$status" '"workers": 2' 60)
  $PY -c 'import json, sys; s = json.loads(sys.argv[1]); assert s["ok"] and s["db"]["ok"] and s["mq"]["ok"], s; print("  ok: api %s: db ok, mq ok, %d workers" % (s["hostname"], s["workers"]))' "$body" ||
    die "status through the front end: $body"
  figure "multi-tier: all tiers up after CREATE_COMPLETE" "$(since "$t0")" s
  body=$(curl -sf -m 10 -X POST --data 'hello from the e2e test' "$jobs") ||
    die "POST $jobs failed"
  id=$($PY -c 'import json, sys; print(json.loads(sys.argv[1])["id"])' "$body")
  t0=$(now)
  body=$(wait_http_body "$jobs/$id" '"done"' 30)
  grep -q '5 words' <<<"$body" || die "job $id: $body"
  secs=$(since "$t0")
  echo "  ok: job $id done by $($PY -c 'import json, sys; print(json.loads(sys.argv[1])["worker"])' "$body"): $($PY -c 'import json, sys; print(json.loads(sys.argv[1])["result"])' "$body" | cut -c1-60)"
  figure "multi-tier: job through front end -> worker -> done" "$secs" s
  stack_delete berth-e2e-multi
}

# ---------------------------------------------------------------------------------------

run_all_tests() {
  [ "$GLANCE_TESTS" = 0 ] || run_glance_real
  run_test
  if [ "$NEUTRON" = 1 ]; then run_network_test; fi
  [ "$FAKE" = 0 ] || run_fake_baseline
  [ "$HEAT" = 0 ] || run_heat
  if [ "$NEUTRON" = 1 ]; then
    [ "$HEAT" = 0 ] || run_heat_neutron
    drop_network
  fi
}

main() {
  [ "$(id -u)" = 0 ] || die "run as root"
  local phase=${1:-run}
  mkdir -p "$E2E_DIR" "$LOG" "$RUN"
  chmod 755 "$E2E_DIR"
  os_env
  case "$phase" in
    stop)
      KEEP=0
      teardown force
      return
      ;;
    test)  # against what `setup` left running
      : >"$FIGURES"
      run_all_tests
      say "PASSED; figures:"
      cat "$FIGURES"
      return
      ;;
    setup) KEEP=1 ;;
    run) ;;
    *) die "unknown phase $phase (run | setup | test | stop)" ;;
  esac
  # A crashed earlier run: stop what it left first.
  local s
  for s in "${SERVICES[@]}"; do stop_svc "$s"; done
  : >"$FIGURES"
  local t_all
  t_all=$(now)
  trap teardown EXIT
  trap 'echo "openstack_e2e: line $LINENO failed: $BASH_COMMAND" >&2' ERR
  trap 'exit 130' INT TERM
  [ "${BERTH_E2E_SKIP_INSTALL:-0}" = 1 ] || { say "apt-get install"; install_packages; }
  local t_setup
  t_setup=$(now)
  configure
  start_infra
  start_keystone
  start_openstack
  start_berthd
  start_nova
  [ "$HEAT" = 0 ] || start_heat
  figure "setup (configure + start + init, no install)" "$(since "$t_setup")" s
  [ "$phase" = run ] || return 0
  run_all_tests
  figure "whole run" "$(since "$t_all")" s
  say "PASSED; figures:"
  cat "$FIGURES"
}

# Sourced (for debugging a phase by hand): only the functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
