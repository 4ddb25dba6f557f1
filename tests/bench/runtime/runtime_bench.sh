#!/bin/bash
# berth-runtime against crun and runc on one busybox bundle (not part of the test suite).
#
#  1. Start-up: `/bin/true` in a fresh container, RUNS times per runtime (`run`, foreground,
#     unique id each time, a state root per runtime), interleaved round-robin so that load
#     from other work on the host hits every runtime alike; plus the namespace floor
#     (`unshare --fork --pid --mount --uts --ipc --net chroot ROOTFS /bin/true`).
#     Prints median and p90 in ms, and berth/crun, berth/runc ratios.
#  2. Density: CONCURRENT `sleep 30` containers started at once with `run -d`; time until
#     every `run -d` returned and until `state` confirmed all "running"; then the host memory
#     each container costs beyond its own processes: the PSS of the berth-monitor processes
#     (from /proc/PID/smaps_rollup) / CONCURRENT. crun and runc leave no supervisor (0); when
#     conmon is installed, CONCURRENT containers under conmon + crun give the usual monitor's.
#
# Usage: runtime_bench.sh            (as root)
# Environment: BERTH_BUILD_DIR (default /work/main/build) or BERTH_RUNTIME (the binary);
#   RUNS (100), CONCURRENT (50), WARMUP (3 discarded runs per runtime),
#   BENCH_KEEP_HUGETLB=1 to leave the hugetlb v1 mount in place (see below);
#   BENCH_NICE=1 to run everything at nice -20: on a host busy with other work (builds) that
#   keeps most of the scheduler's queueing out of the figures, for every runtime alike.
#   (SCHED_FIFO would be cleaner but fails here: with RT group scheduling, an RT task cannot
#   join a cpu cgroup that has no rt_runtime_us, so every runtime's cgroup join gets EINVAL.)
#
# crun refuses a "hybrid" host whose cgroup2 hierarchy owns a controller ("cgroups in hybrid
# mode not supported, drop all controllers from cgroupv2"). Only when crun fails that way, the
# script mounts a v1 hugetlb hierarchy at /sys/fs/cgroup/hugetlb, which moves hugetlb out of
# cgroup2, and undoes it at exit when nothing else made a group there.
set -uo pipefail

RUNS=${RUNS:-100}
CONCURRENT=${CONCURRENT:-50}
WARMUP=${WARMUP:-3}
BERTH_BUILD_DIR=${BERTH_BUILD_DIR:-/work/main/build}
BERTH=${BERTH_RUNTIME:-$BERTH_BUILD_DIR/runtime/cli/berth-runtime}
RUNTIMES=(berth crun runc)

die() {
  echo "runtime_bench: $*" >&2
  exit 1
}

[[ $(id -u) == 0 ]] || die "must run as root"
if [[ ${BENCH_NICE:-0} == 1 && $(nice) != -20 ]]; then
  exec nice -n -20 "$0" "$@"
fi
[[ -x $BERTH ]] || die "berth-runtime not found at $BERTH (set BERTH_BUILD_DIR or BERTH_RUNTIME)"
[[ -x /bin/busybox ]] || die "busybox-static is not installed (/bin/busybox)"

install_missing() {
  local missing=()
  command -v crun >/dev/null || missing+=(crun)
  command -v runc >/dev/null || missing+=(runc)
  command -v jq >/dev/null || missing+=(jq)
  if ((${#missing[@]})); then
    echo "installing ${missing[*]} from Debian" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null ||
      die "apt-get install ${missing[*]} failed"
  fi
}
install_missing
CRUN=$(command -v crun)
RUNC=$(command -v runc)

WORK=$(mktemp -d /tmp/berth-test-bench-runtime.XXXXXX)
chmod 0755 "$WORK"
ROOTFS=$WORK/bundle/rootfs
HUGETLB_MOUNTED=0

# The runtime command line for $1 with its own state root.
rt() {
  case $1 in
    berth) echo "$BERTH --root $WORK/state-berth" ;;
    crun) echo "$CRUN --root $WORK/state-crun" ;;
    runc) echo "$RUNC --root $WORK/state-runc" ;;
    conmon) echo "$CRUN --root $WORK/state-conmon" ;;
  esac
}

# Every container this script made, in any state, removed with delete --force.
delete_all() {
  local r id
  for r in "${RUNTIMES[@]}" conmon; do
    [[ -d $WORK/state-$r ]] || continue
    for id in "$WORK/state-$r"/*; do
      [[ -d $id ]] || continue
      id=${id##*/}
      $(rt "$r") delete --force "$id" >/dev/null 2>&1 ||
        echo "cleanup: $r delete --force $id failed" >&2
    done
  done
}

# conmon outlives the container by a moment (it writes the exit file); end the ones we
# started, by pid, if they linger.
stop_conmons() {
  local f pid
  for f in "$WORK"/conmon-*.pid; do
    [[ -s $f ]] || continue
    pid=$(cat "$f")
    for _ in {1..40}; do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && kill "$pid"
    rm -f "$f"
  done
}

hugetlb_in_cgroup2() { grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; }

# Gives hugetlb back to cgroup2. The v1 hierarchy only dies (and returns its controller) if it
# has no child group when unmounted; berth-runtime leaves its shared parent "berth" behind, and
# a just-removed group can still be dying, so remove "berth" if empty and retry once.
restore_hugetlb() {
  local mp=/sys/fs/cgroup/hugetlb other
  for _ in 1 2 3; do
    rmdir "$mp/berth" 2>/dev/null
    other=$(find "$mp" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)
    if [[ -n $other ]]; then
      echo "note: $mp holds groups not made by this script ($other); left mounted" >&2
      return
    fi
    sleep 0.5
    umount "$mp" || return
    sleep 0.5
    if hugetlb_in_cgroup2; then
      rmdir "$mp"
      echo "restored: hugetlb is back in cgroup2" >&2
      return
    fi
    mount -t cgroup -o hugetlb cgroup "$mp" || return
  done
  echo "note: hugetlb did not return to cgroup2; left mounted at $mp" >&2
}

cleanup() {
  trap - EXIT INT TERM
  delete_all
  stop_conmons
  rm -rf "$WORK"
  if ((HUGETLB_MOUNTED)) && [[ ${BENCH_KEEP_HUGETLB:-0} != 1 ]]; then restore_hugetlb; fi
}
trap cleanup EXIT
trap 'echo interrupted >&2; exit 130' INT TERM

# --- the bundle -------------------------------------------------------------------------
build_bundle() {
  mkdir -p "$ROOTFS"/{bin,proc,sys,dev,tmp,etc,root}
  chmod 1777 "$ROOTFS/tmp"
  cp /bin/busybox "$ROOTFS/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -s busybox "$ROOTFS/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOTFS/etc/passwd"
  printf 'root:x:0:\n' >"$ROOTFS/etc/group"
  $BERTH spec --bundle "$WORK/bundle" || die "berth-runtime spec failed"
  local base=$WORK/bundle/config.json
  jq --arg root "$ROOTFS" '.root = {path: $root, readonly: false}
        | .process.terminal = false | .process.args = ["/bin/true"]' "$base" >"$base.new" ||
    die "editing config.json failed"
  mv "$base.new" "$base"
  # Same rootfs, another command: the density run's bundle.
  mkdir -p "$WORK/sleep"
  jq '.process.args = ["/bin/sleep", "30"]' "$base" >"$WORK/sleep/config.json" ||
    die "writing the sleep bundle failed"
}

# --- crun on a hybrid host --------------------------------------------------------------
# A crun run that fails half-way leaves its (empty) cgroups behind.
forget_crun_probe() {
  $(rt crun) delete --force crun-probe >/dev/null 2>&1
  rmdir /sys/fs/cgroup/*/crun-probe 2>/dev/null
}

make_crun_work() {
  local out
  out=$($(rt crun) run --bundle "$WORK/bundle" crun-probe 2>&1 </dev/null) && return 0
  forget_crun_probe
  if [[ $out == *"hybrid mode not supported"* ]]; then
    local ctrls
    ctrls=$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)
    [[ $ctrls == hugetlb ]] ||
      die "crun refuses hybrid cgroups and cgroup2 holds \"$ctrls\" (only hugetlb is handled)"
    echo "crun refuses hybrid cgroups (cgroup2 holds hugetlb): mounting hugetlb as v1" >&2
    mkdir -p /sys/fs/cgroup/hugetlb || die "mkdir /sys/fs/cgroup/hugetlb failed"
    mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb || die "mounting hugetlb failed"
    HUGETLB_MOUNTED=1
    out=$($(rt crun) run --bundle "$WORK/bundle" crun-probe 2>&1 </dev/null) && return 0
    forget_crun_probe
  fi
  die "crun cannot run the bundle: $out"
}

# --- statistics -------------------------------------------------------------------------
# Nearest-rank percentile $2 (0-100) of the numbers in file $1.
percentile() {
  sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    i = int((p * NR + 99) / 100); if (i < 1) i = 1; printf "%.2f", v[i] }'
}

# Milliseconds between two $EPOCHREALTIME values.
elapsed_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'; }

count_lines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }

# --- 1. start-up ------------------------------------------------------------------------
run_once() {  # runtime id -> appends ms to $WORK/times-<runtime>; counts failures
  local r=$1 id=$2 t0 t1 rc
  t0=$EPOCHREALTIME
  if [[ $r == floor ]]; then
    unshare --fork --pid --mount --uts --ipc --net chroot "$ROOTFS" /bin/true \
      </dev/null >/dev/null 2>"$WORK/err"
  else
    $(rt "$r") run --bundle "$WORK/bundle" "$id" </dev/null >/dev/null 2>"$WORK/err"
  fi
  rc=$?
  t1=$EPOCHREALTIME
  if ((rc != 0)); then
    echo "$id" >>"$WORK/failed-$r"
    [[ -s $WORK/firsterr-$r ]] || { echo "rc=$rc: $(head -c 300 "$WORK/err")" >"$WORK/firsterr-$r"; }
    return
  fi
  elapsed_ms "$t0" "$t1" >>"$WORK/times-$r"
}

startup_bench() {
  local r i
  echo "start-up: $RUNS x /bin/true per runtime (+$WARMUP warm-up), interleaved" >&2
  for ((i = 0; i < WARMUP; i++)); do
    for r in "${RUNTIMES[@]}" floor; do run_once "$r" "w$i-$r"; done
  done
  for r in "${RUNTIMES[@]}" floor; do rm -f "$WORK/times-$r" "$WORK/failed-$r"; done
  for ((i = 0; i < RUNS; i++)); do
    for r in "${RUNTIMES[@]}" floor; do run_once "$r" "t$i-$r"; done
    ((i % 20 == 19)) && echo "  $((i + 1))/$RUNS" >&2
  done
}

# --- 2. density -------------------------------------------------------------------------
declare -A LAUNCH_S CONFIRM_S RUNNING_AT_CHECK NOT_RUNNING PSS_KIB MON_COUNT LAUNCH_FAIL

pss_of_pids() {  # pids... -> total Pss in KiB
  local pid total=0 kib
  for pid in "$@"; do
    kib=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null)
    total=$((total + ${kib:-0}))
  done
  echo "$total"
}

density_bench() {
  local r=$1 i t0 t1 pending
  local cmd
  cmd=$(rt "$r")
  echo "density: $CONCURRENT x sleep 30 with $r (run -d)" >&2
  t0=$EPOCHREALTIME
  for ((i = 0; i < CONCURRENT; i++)); do
    $cmd run -d --bundle "$WORK/sleep" "d$i-$r" </dev/null >/dev/null 2>"$WORK/derr-$r-$i" &
  done
  local fails=0
  for ((i = 0; i < CONCURRENT; i++)); do wait -n || fails=$((fails + 1)); done
  t1=$EPOCHREALTIME
  LAUNCH_FAIL[$r]=$fails
  LAUNCH_S[$r]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  # run -d returns once the process has been exec'd, so all run when the last one returned;
  # `state` confirms it; the time including those polls is reported too, but 50 sequential
  # `state` calls cost more than the launch itself on a busy host.
  pending=()
  for ((i = 0; i < CONCURRENT; i++)); do pending+=("d$i-$r"); done
  RUNNING_AT_CHECK[$r]=$(count_status "$cmd" running "${pending[@]}")
  NOT_RUNNING[$r]=$(wait_status "$cmd" running "${pending[@]}")
  CONFIRM_S[$r]=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
  if ((fails)); then
    echo "  $fails run -d failed; first error: $(cat "$WORK"/derr-"$r"-* | head -c 300)" >&2
  fi
  if [[ $r == berth ]]; then
    local pids=() f pid
    for f in "$WORK"/state-berth/d*-berth/state.json; do
      pid=$(jq -r '.monitorPid // empty' "$f" 2>/dev/null)
      [[ -n $pid && -r /proc/$pid/smaps_rollup ]] && pids+=("$pid")
    done
    MON_COUNT[$r]=${#pids[@]}
    PSS_KIB[$r]=$(pss_of_pids "${pids[@]}")
  else
    MON_COUNT[$r]=0
    PSS_KIB[$r]=0
  fi
  delete_all
}

# How many of ids $3... `$1 state` reports with status $2, in one pass.
count_status() {
  local cmd=$1 want=$2 id n=0
  shift 2
  for id in "$@"; do
    [[ $($cmd state "$id" 2>/dev/null | jq -r .status 2>/dev/null) == "$want" ]] && n=$((n + 1))
  done
  echo "$n"
}

# Polls `$1 state` for ids $3... until each reports status $2 (10 s at most); echoes how many
# did not.
wait_status() {
  local cmd=$1 want=$2 id st
  shift 2
  local pending=("$@") deadline=$((SECONDS + 10))
  while ((${#pending[@]})) && ((SECONDS < deadline)); do
    local still=()
    for id in "${pending[@]}"; do
      st=$($cmd state "$id" 2>/dev/null | jq -r .status 2>/dev/null)
      [[ $st == "$want" ]] || still+=("$id")
    done
    pending=("${still[@]}")
    ((${#pending[@]})) && sleep 0.01
  done
  echo "${#pending[@]}"
}

# The usual per-container monitor: conmon supervising crun (create, then start), its PSS the
# peer of berth-monitor's.
conmon_density() {
  local r=conmon i t0 ids=() cmd
  cmd=$(rt conmon)
  echo "density: $CONCURRENT x sleep 30 with conmon + crun" >&2
  mkdir -p "$WORK/conmon-exit" "$WORK/conmon-sock"
  t0=$EPOCHREALTIME
  for ((i = 0; i < CONCURRENT; i++)); do
    ids+=("m$i")
    conmon --api-version 1 -c "m$i" -u "m$i" -n "m$i" -r "$CRUN" -b "$WORK/sleep" \
      -p "$WORK/conmon-init-$i.pid" -P "$WORK/conmon-$i.pid" -l "k8s-file:$WORK/conmon-$i.log" \
      --exit-dir "$WORK/conmon-exit" --socket-dir-path "$WORK/conmon-sock" \
      --runtime-arg --root --runtime-arg "$WORK/state-conmon" \
      </dev/null >/dev/null 2>"$WORK/derr-conmon-$i" &
  done
  local fails=0
  for ((i = 0; i < CONCURRENT; i++)); do wait -n || fails=$((fails + 1)); done
  local not_created
  not_created=$(wait_status "$cmd" created "${ids[@]}")
  for id in "${ids[@]}"; do $cmd start "$id" >/dev/null 2>&1 & done
  wait
  LAUNCH_S[$r]=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
  RUNNING_AT_CHECK[$r]=$(count_status "$cmd" running "${ids[@]}")
  NOT_RUNNING[$r]=$(wait_status "$cmd" running "${ids[@]}")
  CONFIRM_S[$r]=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
  LAUNCH_FAIL[$r]=$((fails + not_created))
  local pids=() f
  for ((i = 0; i < CONCURRENT; i++)); do
    f=$WORK/conmon-$i.pid
    [[ -s $f && -r /proc/$(cat "$f")/smaps_rollup ]] && pids+=("$(cat "$f")")
  done
  MON_COUNT[$r]=${#pids[@]}
  PSS_KIB[$r]=$(pss_of_pids "${pids[@]}")
  delete_all
  stop_conmons
}

# --- report -----------------------------------------------------------------------------
report() {
  local r
  declare -A MED P90
  for r in "${RUNTIMES[@]}" floor; do
    MED[$r]=$(percentile "$WORK/times-$r" 50)
    P90[$r]=$(percentile "$WORK/times-$r" 90)
  done
  echo
  echo "== start-up: /bin/true in a fresh container, $RUNS runs each (ms) =="
  printf '%-26s %9s %9s %6s %9s\n' runtime median p90 ok failed
  local label n failed
  for r in "${RUNTIMES[@]}" floor; do
    case $r in
      berth) label="berth-runtime run" ;;
      crun) label="crun run ($($CRUN --version | head -1 | awk '{print $3}'))" ;;
      runc) label="runc run ($($RUNC --version | head -1 | awk '{print $3}'))" ;;
      floor) label="unshare+chroot (floor)" ;;
    esac
    n=$(count_lines "$WORK/times-$r")
    failed=$(count_lines "$WORK/failed-$r")
    printf '%-26s %9s %9s %6s %9s\n' "$label" "${MED[$r]}" "${P90[$r]}" "$n" "$failed"
  done
  for r in "${RUNTIMES[@]}" floor; do
    [[ -s $WORK/firsterr-$r ]] && echo "  first failure ($r): $(cat "$WORK/firsterr-$r")"
  done
  awk -v bm="${MED[berth]}" -v bp="${P90[berth]}" -v cm="${MED[crun]}" -v cp="${P90[crun]}" \
    -v rm="${MED[runc]}" -v rp="${P90[runc]}" 'BEGIN {
      printf "%-26s %9.2f %9.2f\n", "ratio berth/crun", bm / cm, bp / cp
      printf "%-26s %9.2f %9.2f\n", "ratio berth/runc", bm / rm, bp / rp }'
  echo
  echo "== density: $CONCURRENT concurrent 'sleep 30' containers (run -d) =="
  printf '%-10s %10s %10s %12s %7s %9s %12s\n' runtime "all run s" "running" "+polls s" \
    failed "monitors" "PSS/ctr MiB"
  local rows=("${RUNTIMES[@]}")
  [[ -n ${LAUNCH_S[conmon]:-} ]] && rows+=(conmon)
  for r in "${rows[@]}"; do
    printf '%-10s %10s %10s %12s %7s %9s %12s\n' "$r" "${LAUNCH_S[$r]}" \
      "${RUNNING_AT_CHECK[$r]}/$CONCURRENT" \
      "${CONFIRM_S[$r]}$( ((NOT_RUNNING[$r])) && echo " (${NOT_RUNNING[$r]} never)")" \
      "${LAUNCH_FAIL[$r]}" "${MON_COUNT[$r]}" \
      "$(awk -v k="${PSS_KIB[$r]}" -v n="$CONCURRENT" 'BEGIN { printf "%.3f", k / n / 1024 }')"
  done
  echo "  all run: from the first launch until the last 'run -d' returned (each returns once its"
  echo "  process is exec'd; conmon: until the last 'crun start' returned); running: how many"
  echo "  'state' showed \"running\" right after; +polls: until 'state' had confirmed all"
  echo "  $CONCURRENT (sequential polls, up to 10 s more)."
  echo "  PSS/ctr: berth = sum of Pss (smaps_rollup) of its berth-monitor processes / $CONCURRENT;"
  echo "  crun and runc keep no per-container supervisor after 'run -d' (0 by construction)."
  if [[ -n ${LAUNCH_S[conmon]:-} ]]; then
    echo "  conmon: conmon $(conmon --version | awk 'NR==1 {print $3}') supervising crun (create"
    echo "  through conmon, then crun start); PSS/ctr = Pss of the conmon processes / $CONCURRENT."
  else
    echo "  conmon: not installed (the issue quotes ~0.36 MiB PSS for it on this host)."
  fi
  echo "  host: $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
  if [[ $(nice) == -20 ]]; then
    echo "  scheduling: nice -20 (BENCH_NICE=1) for the script and every runtime."
  fi
  if awk -v n="$(nproc)" '{ exit !($1 > n) }' /proc/loadavg; then
    echo "  WARNING: the load exceeds the CPU count: other work shares the CPUs, so absolute"
    echo "  times are inflated; compare the ratios and the floor, or rerun on a quiet host."
  fi
  ((HUGETLB_MOUNTED)) && echo "  hugetlb was moved to a v1 mount for crun during the run."
  return 0
}

build_bundle
make_crun_work
startup_bench
for r in "${RUNTIMES[@]}"; do density_bench "$r"; done
command -v conmon >/dev/null && conmon_density
report
