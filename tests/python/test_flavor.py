"""nova_berth.flavor: Nova flavor -> berthd flavor and the limits berthd makes of it."""

import pytest

from nova_berth import flavor


class Obj(object):
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_dict_flavor_translates_and_stringifies_specs():
    out = flavor.to_berth_flavor({"vcpus": 2, "memory_mb": 256, "root_gb": 5,
                                  "extra_specs": {"berth:pids_limit": 100, "hw:foo": "x"}})
    assert out == {"vcpus": 2, "memory_mb": 256, "root_gb": 5,
                   "extra_specs": {"berth:pids_limit": "100", "hw:foo": "x"}}


def test_object_flavor_with_unset_fields():
    out = flavor.to_berth_flavor(Obj(vcpus=1, memory_mb=64, root_gb=None, extra_specs=None))
    assert out == {"vcpus": 1, "memory_mb": 64, "root_gb": 0, "extra_specs": {}}


def test_nova_flavor_object():
    from nova import objects
    objects.register_all()
    f = objects.Flavor(vcpus=4, memory_mb=2048, root_gb=40, ephemeral_gb=80, swap=1024,
                       extra_specs={"quota:cpu_shares": "512"})
    out = flavor.to_berth_flavor(f)
    assert out == {"vcpus": 4, "memory_mb": 2048, "root_gb": 40,
                   "extra_specs": {"quota:cpu_shares": "512"}}


def test_default_limits_follow_vcpus_and_memory():
    lim = flavor.cgroup_limits({"vcpus": 3, "memory_mb": 512, "root_gb": 0})
    assert lim == {"memory_bytes": 512 << 20, "cpu_period_us": 100000,
                   "cpu_quota_us": 300000, "cpu_shares": 3072, "cpuset": None,
                   "pids_limit": None, "blkio_weight": None}


def test_known_extra_specs_override():
    lim = flavor.cgroup_limits({"vcpus": 1, "memory_mb": 64, "extra_specs": {
        "quota:cpu_shares": "2048", "quota:cpu_period": "50000", "quota:cpu_quota": "-1",
        "hw:cpuset": "0-1,3", "berth:pids_limit": "64", "quota:disk_io_weight": "500"}})
    assert lim["cpu_shares"] == 2048
    assert lim["cpu_period_us"] == 50000
    assert lim["cpu_quota_us"] == -1
    assert lim["cpuset"] == "0-1,3"
    assert lim["pids_limit"] == 64
    assert lim["blkio_weight"] == 500


@pytest.mark.parametrize("key,value,words", [
    ("quota:cpu_shares", "1", "2..262144"),
    ("quota:cpu_shares", "lots", "want an integer"),
    ("quota:cpu_period", "999", "1000..1000000"),
    ("quota:cpu_quota", "0", "0 is not a quota"),
    ("quota:disk_io_weight", "5000", "10..1000"),
    ("berth:pids_limit", "0", "1.."),
    ("hw:cpuset", "0-1;3", "cpu list"),
])
def test_bad_known_spec_names_the_key(key, value, words):
    with pytest.raises(flavor.InvalidFlavor) as e:
        flavor.to_berth_flavor({"vcpus": 1, "memory_mb": 64, "extra_specs": {key: value}})
    assert key in str(e.value) and words in str(e.value)


def test_unknown_specs_are_not_checked():
    out = flavor.to_berth_flavor({"vcpus": 1, "memory_mb": 64,
                                  "extra_specs": {"hw:cpu_policy": "whatever"}})
    assert out["extra_specs"] == {"hw:cpu_policy": "whatever"}


@pytest.mark.parametrize("field,value", [("vcpus", 0), ("memory_mb", 0), ("vcpus", "x"),
                                         ("root_gb", -1)])
def test_bad_base_fields(field, value):
    f = {"vcpus": 1, "memory_mb": 64, "root_gb": 0}
    f[field] = value
    with pytest.raises(flavor.InvalidFlavor) as e:
        flavor.to_berth_flavor(f)
    assert "flavor." + field in str(e.value)
