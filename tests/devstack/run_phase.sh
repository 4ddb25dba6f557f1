#!/usr/bin/env bash
# Runs devstack/plugin.sh the way devstack does (settings, then `source plugin.sh ARGS`),
# with devstack's helper functions and every command that would change the host replaced
# by recorders, so the test sees the calls each phase makes and nothing is installed,
# started or written outside the temp dirs the test gives.
#
#   run_phase.sh stack install          (ARGS as devstack passes them)
#
# Environment (set by tests/python/test_devstack_plugin.py):
#   STUB_LOG       file the calls are appended to: fields separated by \x1f, records ended
#                  by \x1e; a recorded command's stdin, when it reads /dev/stdin, is the
#                  last field, prefixed "stdin:"
#   STUB_ENABLED   space-separated services is_service_enabled answers yes for
#   STUB_TOKEN     what `sudo cat <token file>` prints (default: nothing: no token yet)
#   STUB_INSTANCES what `berth --json instance list` prints (default: no instances)
#   STUB_WAIT_RC   wait_for_service's exit status (default 0)
#   STUB_IS_UBUNTU is_ubuntu's exit status (default 0)
#   DEST, NOVA_CONF, NOVA_CPU_CONF, GLANCE_API_CONF, SERVICE_TIMEOUT, BERTH_*: as devstack's
set -o errexit
set -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

record() {
    local a
    {
        for a in "$@"; do printf '%s\x1f' "$a"; done
        printf '\x1e'
    } >>"$STUB_LOG"
}

# devstack's functions (functions-common, lib/*): record, answer like devstack.
function is_service_enabled {
    local s
    for s in "$@"; do
        [[ " $STUB_ENABLED " == *" $s "* ]] && return 0
    done
    return 1
}
function enable_service { record enable_service "$@"; }
function echo_summary { record echo_summary "$@"; }
function run_process { record run_process "$@"; }
function stop_process { record stop_process "$@"; }
function iniset { record iniset "$@"; }
function wait_for_service { record wait_for_service "$@"; return "${STUB_WAIT_RC:-0}"; }
function is_ubuntu { return "${STUB_IS_UBUNTU:-0}"; }
function die { record die "$@"; exit 1; }
function trueorfalse {  # trueorfalse DEFAULT VARNAME, as devstack's
    local default=$1 v=${!2:-}
    case "$v" in
        1 | [yY]es | YES | [tT]rue | TRUE | on | On) echo True ;;
        0 | [nN]o | NO | [fF]alse | FALSE | off | Off) echo False ;;
        *) echo "$default" ;;
    esac
}
export -f record

# Commands: a directory of recorders first on PATH.
stubs=$(mktemp -d "${TMPDIR:-/tmp}/berth-devstack-stubs.XXXXXX")
trap 'rm -rf "$stubs"' EXIT
cat >"$stubs/recorder" <<'REC'
#!/usr/bin/env bash
name=$(basename "$0")
args=("$@")
case " $* " in
    *" /dev/stdin "*) args+=("stdin:$(cat)") ;;
esac
record "$name" "${args[@]}"
if [[ "$name" == sudo && "${1:-}" == cat && -n "${STUB_TOKEN:-}" ]]; then
    echo "$STUB_TOKEN"
fi
if [[ "$name" == sudo && " $* " == *" instance list "* ]]; then
    echo "${STUB_INSTANCES:-{\"instances\": []\}}"
fi
exit 0
REC
chmod +x "$stubs/recorder"
for cmd in sudo cmake ninja openstack systemctl apt-get pip; do
    ln -s recorder "$stubs/$cmd"
done
export PATH="$stubs:$PATH"

export BERTH_DIR=$repo
# shellcheck source=devstack/override-defaults
source "$repo/devstack/override-defaults"
record VIRT_DRIVER "$VIRT_DRIVER"
# shellcheck source=devstack/settings
source "$repo/devstack/settings"
# shellcheck source=devstack/plugin.sh
source "$repo/devstack/plugin.sh" "$@"
