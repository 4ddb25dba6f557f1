#!/usr/bin/env bash
# Tempest (Debian's `tempest`, Tempest 33) against the e2e OpenStack: the same tests once with
# Berth as the compute driver and once with Nova's fake.SmallFakeDriver, then a side-by-side
# table of passed / failed / skipped and the failures of each run with their reason.
#
# Run as root against what `tests/e2e/openstack_e2e.sh setup` left running (or set
# BERTH_TEMPEST_SETUP=1 to run the setup first and stop it at the end):
#
#   tests/e2e/tempest.sh              berth run, then fake run, then the table
#   tests/e2e/tempest.sh berth        only the Berth run (the table shows what exists)
#   tests/e2e/tempest.sh fake         only the fake-driver run
#   tests/e2e/tempest.sh report       the table of the runs already made
#   tests/e2e/tempest.sh glance       only the glance_adapter tests against the real services
#
# Which driver a run uses: both nova-compute services are registered in the one cell; the
# one not under test is disabled (`openstack compute service set --disable`), so the
# scheduler's ComputeFilter sends every server to the other. The fake compute (host
# fake-host) is started for the fake run and stopped after it; the Berth compute is
# enabled again at the end.
#
# Environment:
#   BERTH_TEMPEST_REGEX (^tempest\.api\.compute\.servers\.) the tests to run
#   BERTH_TEMPEST_CONCURRENCY (2) Tempest workers
#   BERTH_TEMPEST_SETUP (0) 1 = run `openstack_e2e.sh setup` first and stop it at the end
#   BERTH_E2E_GLANCE_TESTS (1) also run the glance_adapter tests against the real
#       Keystone and Glance first (openstack_e2e.sh's run_glance_real); 0 skips them
#   plus openstack_e2e.sh's (BERTH_E2E_DIR, BERTH_BUILD_DIR, ...).
# Results: $BERTH_E2E_DIR/tempest/<driver>/ (tempest.conf, tempest.log, results.subunit),
# the table in $BERTH_E2E_DIR/tempest/report.txt.
set -Eeuo pipefail

HERE_T=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# openstack_e2e.sh's settings and functions (its main does not run when sourced).
# shellcheck source=SCRIPTDIR/openstack_e2e.sh
source "$HERE_T/openstack_e2e.sh"

REGEX=${BERTH_TEMPEST_REGEX:-'^tempest\.api\.compute\.servers\.'}
CONCURRENCY=${BERTH_TEMPEST_CONCURRENCY:-2}
TEMPEST_DIR=$E2E_DIR/tempest
KNOWN=$HERE_T/tempest_known_failures.txt

# The flavors and images every run uses: two of each, as Tempest's resize and rebuild
# tests need an "alt" one. The image is a busybox docker-archive whose process prints a few
# lines at start, as a guest's boot does (test_get_console_output asks for the last 3 lines
# of the console and wants 3), and stops cleanly on SIGTERM.
# shellcheck disable=SC2016  # expanded by the instance's shell
TEMPEST_IMAGE_CMD='echo "berth tempest image on $(hostname)"; echo "$(date -u) started";
echo booted; trap "echo bye; exit 0" TERM; while :; do sleep 0.2; done'
tempest_resources() {
  say "Tempest's flavors and images"
  local f
  for f in "tempest.small:1:128" "tempest.alt:1:192"; do
    IFS=: read -r name vcpus ram <<<"$f"
    openstack flavor show "$name" >/dev/null 2>&1 ||
      openstack flavor create --vcpus "$vcpus" --ram "$ram" --disk 1 "$name" >/dev/null
  done
  $PY "$HERE/e2e_helper.py" busybox-archive --shell "$TEMPEST_IMAGE_CMD" \
    "$TEMPEST_DIR/busybox-docker.tar" >/dev/null
  # Made anew each time: an image of an earlier run may have another command.
  local img
  for img in tempest-busybox tempest-busybox-alt; do
    openstack image delete "$img" >/dev/null 2>&1 || true
    openstack image create --container-format docker --disk-format raw --public \
      --file "$TEMPEST_DIR/busybox-docker.tar" "$img" >/dev/null
  done
}

write_tempest_conf() {  # write_tempest_conf FILE
  local image image_alt flavor flavor_alt
  image=$(openstack image show tempest-busybox -f value -c id)
  image_alt=$(openstack image show tempest-busybox-alt -f value -c id)
  flavor=$(openstack flavor show tempest.small -f value -c id)
  flavor_alt=$(openstack flavor show tempest.alt -f value -c id)
  cat >"$1" <<EOF
[DEFAULT]
log_file = tempest.log
use_stderr = false
[auth]
# Each test class gets its own project and users, made with the admin's credentials.
use_dynamic_credentials = true
# No project networks: Neutron here has no mechanism driver and no agents (servers boot
# without a port, as with --nic none).
create_isolated_networks = false
admin_username = admin
admin_password = $PASS
admin_project_name = admin
admin_domain_name = Default
[identity]
uri_v3 = $KS/v3
auth_version = v3
region = $REGION
v3_endpoint_type = public
[identity-feature-enabled]
api_v2 = false
[compute]
image_ref = $image
image_ref_alt = $image_alt
flavor_ref = $flavor
flavor_ref_alt = $flavor_alt
region = $REGION
min_compute_nodes = 1
min_microversion = 2.1
max_microversion = latest
build_timeout = 300
build_interval = 1
[compute-feature-enabled]
console_output = true
pause = true
suspend = true
resize = true
snapshot = true
shelve = true
# A single host: no migration of any kind.
cold_migration = false
live_migration = false
block_migration_for_live_migration = false
# Not on this cloud (no guest agent, no console proxies, no Cinder, no metadata service).
change_password = false
rescue = false
vnc_console = false
spice_console = false
serial_console = false
rdp_console = false
interface_attach = false
metadata_service = false
config_drive = false
personality = false
attach_encrypted_volume = false
swap_volume = false
volume_multiattach = false
hostname_fqdn_sanitization = true
[image]
region = $REGION
[image-feature-enabled]
api_v1 = false
api_v2 = true
[network]
region = $REGION
[network-feature-enabled]
ipv6 = false
floating_ips = false
[validation]
# No guest networking here: no SSH into servers.
run_validation = false
[service_available]
nova = true
glance = true
neutron = true
cinder = false
swift = false
horizon = false
EOF
}

# Make the scheduler send every server to one compute service: enable HOST, disable the
# others (both are in the one cell; a disabled service is filtered out).
only_compute() {  # only_compute HOST
  local h
  for h in $(openstack compute service list --service nova-compute -f value -c Host); do
    if [ "$h" = "$1" ]; then
      openstack compute service set --enable "$h" nova-compute
    else
      openstack compute service set --disable --disable-reason "tempest run on $1" \
        "$h" nova-compute
    fi
  done
  echo "compute services:"
  openstack compute service list --service nova-compute -f value -c Host -c Status -c State |
    sed 's/^/  /'
}

run_tempest() {  # run_tempest LABEL
  local label=$1 ws=$TEMPEST_DIR/$1 t0 rc=0
  say "Tempest, $label: $REGEX (concurrency $CONCURRENCY)"
  rm -rf "$ws"
  mkdir -p "$TEMPEST_DIR"
  # The workspace of an earlier run is still registered under this name. (From
  # $TEMPEST_DIR: these commands leave a tempest.log in the current directory.)
  (cd "$TEMPEST_DIR" &&
    { tempest workspace remove --workspace-path "$TEMPEST_DIR/workspaces.yaml" \
      --name "berth-e2e-$label" >/dev/null 2>&1 || true; } &&
    tempest init --workspace-path "$TEMPEST_DIR/workspaces.yaml" --name "berth-e2e-$label" \
      "$ws" >/dev/null)
  write_tempest_conf "$ws/etc/tempest.conf"
  t0=$(now)
  (cd "$ws" && tempest run --config-file "$ws/etc/tempest.conf" --regex "$REGEX" \
    --concurrency "$CONCURRENCY" >"$ws/run.log" 2>&1) || rc=$?
  local secs
  secs=$(since "$t0")
  (cd "$ws" && stestr last --subunit >"$ws/results.subunit") ||
    die "no Tempest results in $ws (log: $ws/run.log)"
  tail -12 "$ws/run.log" | sed 's/^/  /'
  echo "$label: tempest run exit $rc, $secs s" | tee "$ws/duration.txt"
  figure "tempest $label ($REGEX)" "$secs" s
}

report() {
  local runs=() l
  for l in berth fake; do
    [ -s "$TEMPEST_DIR/$l/results.subunit" ] && runs+=("$l=$TEMPEST_DIR/$l/results.subunit")
  done
  [ ${#runs[@]} -gt 0 ] || die "no Tempest run in $TEMPEST_DIR"
  say "Tempest results"
  for l in berth fake; do
    [ -f "$TEMPEST_DIR/$l/duration.txt" ] && cat "$TEMPEST_DIR/$l/duration.txt"
  done
  local rc=0
  $PY "$HERE_T/tempest_report.py" --known "$KNOWN" "${runs[@]}" | tee "$TEMPEST_DIR/report.txt" ||
    rc=$?
  return $rc
}

berth_host() {
  openstack compute service list --service nova-compute -f value -c Host | grep -vx fake-host |
    head -1
}

tempest_main() {
  [ "$(id -u)" = 0 ] || die "run as root"
  command -v tempest >/dev/null || die "tempest is not installed (tests/e2e/packages.sh)"
  local what=${1:-all}
  mkdir -p "$E2E_DIR" "$LOG" "$RUN" "$TEMPEST_DIR"
  os_env
  if [ "${BERTH_TEMPEST_SETUP:-0}" = 1 ]; then
    "$HERE_T/openstack_e2e.sh" setup
    trap '"$HERE_T/openstack_e2e.sh" stop' EXIT
  fi
  if ! [ -f "$RUN/nova-compute.pid" ] || ! alive_leader "$(cat "$RUN/nova-compute.pid")"; then
    die "no running e2e OpenStack: run tests/e2e/openstack_e2e.sh setup first"
  fi
  [ "$what" = report ] && { report; return; }
  tempest_resources
  if [ "$what" = glance ] || { [ "$what" = all ] && [ "$GLANCE_TESTS" = 1 ]; }; then
    run_glance_real
  fi
  [ "$what" = glance ] && return
  local host
  host=$(berth_host)
  [ -n "$host" ] || die "no Berth nova-compute service"
  if [ "$what" = all ] || [ "$what" = berth ]; then
    # The fake compute of an earlier run may still be registered: keep it out.
    only_compute "$host"
    run_tempest berth
  fi
  if [ "$what" = all ] || [ "$what" = fake ]; then
    start_fake_compute
    only_compute fake-host
    run_tempest fake
    only_compute "$host"
    stop_svc nova-compute-fake
  fi
  report
}

tempest_main "$@"
