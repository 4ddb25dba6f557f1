#!/bin/bash
# A short fuzzing campaign over Berth's libFuzzer targets (ASan + UBSan, clang):
#   berth_fuzz_store_apply     layer archive importer    corpus tests/fuzz/store/corpus/apply
#   berth_fuzz_store_manifest  manifest/config parsers   corpus tests/fuzz/store/corpus/manifest
#   berth_fuzz_spec            OCI runtime spec parser   corpus tests/fuzz/spec/corpus
#
# Usage: scripts/fuzz.sh [TARGET...]        (default: all three)
#   FUZZ_SECONDS=60     seconds per target
#   FUZZ_BUILD_DIR=build-fuzz
#   FUZZ_WERROR=OFF     -Werror for the clang build (OFF: clang may warn where gcc doesn't)
#   FUZZ_KEEP=1         keep the temp dir with new inputs even when nothing crashed
#
# How long: building the fuzz tree from scratch takes about 6-8 minutes on 2 cores (only the
# three targets and their libraries; incremental: seconds), then FUZZ_SECONDS per target
# (default 60 s each, 3 minutes in all).
#
# The repository's corpora are only read: libFuzzer writes new inputs into the first corpus
# directory it is given, which here is a temp dir (a copy of the seeds). Crash inputs go to
# the same temp dir, which is kept when anything crashed. One line per target with the
# executions and the result; exit status 1 when any target crashed or failed to run.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD_DIR:-$src/build-fuzz}
werror=${FUZZ_WERROR:-OFF}

declare -A corpus=(
  [berth_fuzz_store_apply]=tests/fuzz/store/corpus/apply
  [berth_fuzz_store_manifest]=tests/fuzz/store/corpus/manifest
  [berth_fuzz_spec]=tests/fuzz/spec/corpus
)
declare -A dict=([berth_fuzz_spec]=tests/fuzz/spec/spec.dict)
# Without a cap libFuzzer takes the largest seed as its limit: the manifest corpus's 1 MiB
# nesting bomb then makes every mutation ~1 MiB (65 execs in 10 s instead of ~90 000).
declare -A max_len=([berth_fuzz_store_apply]=65536 [berth_fuzz_store_manifest]=16384
  [berth_fuzz_spec]=16384)

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(berth_fuzz_store_apply berth_fuzz_store_manifest berth_fuzz_spec)
for t in "${targets[@]}"; do
  [ -n "${corpus[$t]:-}" ] || { echo "fuzz.sh: unknown target $t" >&2; exit 2; }
done
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (apt-get install clang)" >&2; exit 2; }

echo "== building ${targets[*]} in $build"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBERTH_FUZZ=ON \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DBERTH_BUILD_TESTS=ON \
  -DBERTH_WERROR="$werror" >/dev/null
ninja -C "$build" "${targets[@]}"

# A UBSan finding is a crash too, not a line in a log.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
work=$(mktemp -d /tmp/berth-fuzz.XXXXXX)
failed=0
for t in "${targets[@]}"; do
  bin=$(find "$build" -type f -name "$t" -perm -u+x | head -n1)
  [ -n "$bin" ] || { echo "$t: binary not found under $build"; failed=1; continue; }
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  cp -r "$src/${corpus[$t]}/." "$work/$t/corpus/"
  args=(-max_total_time="$seconds" -timeout=25 -print_final_stats=1 -max_len="${max_len[$t]}"
        -artifact_prefix="$work/$t/artifacts/")
  [ -z "${dict[$t]:-}" ] || args+=(-dict="$src/${dict[$t]}")
  # New inputs go to the first directory (the temp copy); the seeds are read from there too.
  set +e
  "$bin" "${args[@]}" "$work/$t/corpus" >"$work/$t/log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log" | tail -n1)
  new=$(find "$work/$t/corpus" -type f | wc -l)
  seeds=$(find "$src/${corpus[$t]}" -type f | wc -l)
  crash=$(find "$work/$t/artifacts" -type f | head -n1)
  if [ $rc -eq 0 ] && [ -z "$crash" ]; then
    printf '%-26s ok     %10s execs in %ss, corpus %d -> %d\n' "$t" "${execs:-?}" "$seconds" \
      "$seeds" "$new"
  else
    failed=1
    printf '%-26s FAILED %10s execs (exit %d) crash input: %s log: %s\n' "$t" "${execs:-?}" \
      "$rc" "${crash:-none}" "$work/$t/log"
    grep -m3 -E 'ERROR: (AddressSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error' \
      "$work/$t/log" | sed 's/^/    /' || true
  fi
done

if [ $failed -eq 0 ] && [ -z "${FUZZ_KEEP:-}" ]; then
  rm -rf "$work"
else
  echo "inputs and logs kept in $work"
fi
exit $failed
