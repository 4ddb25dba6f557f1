"""Nova flavor -> berthd flavor, and the cgroup limits berthd will make of it.

Pure functions (no Nova import needed: a flavor is anything with vcpus, memory_mb,
root_gb and extra_specs, as attributes or keys), so they are unit tested alone.

berthd applies the limits (driver/server/instance.cc FlavorToResources); the same rules are
repeated here so a bad extra spec fails in Nova's API-facing code path with a message
naming the key before anything is sent, and so diagnostics can say what a flavor means.
Keep the two in step: tests/python/test_flavor.py pins the numbers.
"""

import re

CPU_PERIOD_US = 100000

# extra spec -> (min, max) of its integer value, as berthd checks them.
INT_SPECS = {
    "quota:cpu_shares": (2, 262144),
    "quota:cpu_period": (1000, 1000000),
    "quota:cpu_quota": (-1, 1 << 40),
    "quota:disk_io_weight": (10, 1000),
    "berth:pids_limit": (1, 1 << 22),
}
CPUSET_SPEC = "hw:cpuset"
KNOWN_SPECS = frozenset(INT_SPECS) | {CPUSET_SPEC}

_CPUSET_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


class InvalidFlavor(ValueError):
    """A flavor berthd would refuse; the message names the field."""


def _get(flavor, name, default=None):
    if isinstance(flavor, dict):
        return flavor.get(name, default)
    try:
        value = getattr(flavor, name)
    except Exception:
        # An unset field of a Nova object that cannot be lazy-loaded (no context, not
        # in the database) is simply absent.
        return default
    return default if value is None else value


def _int_field(flavor, name, minimum):
    value = _get(flavor, name, 0 if minimum == 0 else None)
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise InvalidFlavor(f"flavor.{name}: want an integer, got {value!r}")
    if value < minimum:
        raise InvalidFlavor(f"flavor.{name}: want an integer >= {minimum}, got {value}")
    return value


def to_berth_flavor(flavor):
    """The "flavor" object of POST /v1/instances and of the resize action.

    Every extra spec is passed on as a string (berthd ignores the ones meant for other
    drivers); the ones berthd knows are checked here first.
    """
    specs = {str(k): str(v) for k, v in (_get(flavor, "extra_specs", {}) or {}).items()}
    out = {
        "vcpus": _int_field(flavor, "vcpus", 1),
        "memory_mb": _int_field(flavor, "memory_mb", 1),
        "root_gb": _int_field(flavor, "root_gb", 0),
        "extra_specs": specs,
    }
    cgroup_limits(out)
    return out


def _spec_int(specs, key):
    lo, hi = INT_SPECS[key]
    raw = specs[key].strip()
    try:
        value = int(raw, 10)
    except ValueError:
        raise InvalidFlavor(f"flavor.extra_specs.{key}: want an integer, got {raw!r}")
    if not lo <= value <= hi:
        raise InvalidFlavor(f"flavor.extra_specs.{key}: want {lo}..{hi}, got {value}")
    return value


def cgroup_limits(berth_flavor):
    """The limits berthd sets for a berthd flavor dict.

    Returns {memory_bytes, cpu_period_us, cpu_quota_us (-1: none), cpu_shares, cpuset
    (None: all), pids_limit (None: none), blkio_weight (None: default)}.
    """
    specs = berth_flavor.get("extra_specs") or {}
    vcpus = int(berth_flavor["vcpus"])
    limits = {
        "memory_bytes": int(berth_flavor["memory_mb"]) << 20,
        "cpu_period_us": CPU_PERIOD_US,
        "cpu_quota_us": vcpus * CPU_PERIOD_US,
        "cpu_shares": 1024 * vcpus,
        "cpuset": None,
        "pids_limit": None,
        "blkio_weight": None,
    }
    if "quota:cpu_shares" in specs:
        limits["cpu_shares"] = _spec_int(specs, "quota:cpu_shares")
    if "quota:cpu_period" in specs:
        limits["cpu_period_us"] = _spec_int(specs, "quota:cpu_period")
    if "quota:cpu_quota" in specs:
        quota = _spec_int(specs, "quota:cpu_quota")
        if quota == 0:
            raise InvalidFlavor("flavor.extra_specs.quota:cpu_quota: 0 is not a quota")
        limits["cpu_quota_us"] = quota
    if CPUSET_SPEC in specs:
        cpuset = specs[CPUSET_SPEC].strip()
        if not _CPUSET_RE.match(cpuset):
            raise InvalidFlavor(
                f'flavor.extra_specs.{CPUSET_SPEC}: want a cpu list like "0-1,3", '
                f"got {cpuset!r}")
        limits["cpuset"] = cpuset
    if "berth:pids_limit" in specs:
        limits["pids_limit"] = _spec_int(specs, "berth:pids_limit")
    if "quota:disk_io_weight" in specs:
        limits["blkio_weight"] = _spec_int(specs, "quota:disk_io_weight")
    return limits

