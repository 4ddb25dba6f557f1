"""BerthDriver with real nova.objects (Instance, Flavor, ImageMeta, NetworkInfo) against a
fake berthd: the exact requests each Nova call sends, and the Nova exceptions berthd's
errors become."""

import pytest

from nova import context as nova_context
from nova import exception
from nova import objects
from nova.compute import provider_tree
from nova.compute import task_states
import nova.conf
from nova.tests.unit import fake_instance
from nova.tests.unit import utils as test_utils
from nova.virt import driver as virt_driver
from nova.virt import fake as fake_virt
from nova.virt import hardware

from fake_berthd import HOST, error, instance_json
from nova_berth import client as berth_client
from nova_berth import driver as berth_driver

objects.register_all()
CONF = nova.conf.CONF
CONF([], project="nova", default_config_files=[], default_config_dirs=[])
UUID = "0e4f5a9c-1b2d-4c3e-8f70-123456789abc"
IMAGE = "cedef40a-ed67-4d10-800e-17455edce175"
INST = "/v1/instances/" + UUID
ACTION = INST + "/action"


@pytest.fixture
def conf():
    overrides = []

    def set_(name, value, group=None):
        CONF.set_override(name, value, group=group)
        overrides.append((name, group))

    yield set_
    for name, group in overrides:
        CONF.clear_override(name, group=group)


class OsVifRecorder(object):
    """Stands in for os_vif's plug/unplug (which would make real bridges as root); the
    conversion of Nova's VIFs through nova.network.os_vif_util stays real."""

    def __init__(self, log):
        self.log = log
        self.fail = None

    def initialize(self, *a, **kw):
        from os_vif import objects as os_vif_objects
        os_vif_objects.register_all()  # what the real initialize does, minus the plugins
        self.log.append(("os_vif.initialize",))

    def plug(self, vif, instance_info):
        if self.fail:
            raise self.fail
        self.log.append(("os_vif.plug", type(vif).__name__, vif.id, instance_info.uuid))

    def unplug(self, vif, instance_info):
        self.log.append(("os_vif.unplug", type(vif).__name__, vif.id, instance_info.uuid))


class RecordingVirtAPI(fake_virt.FakeVirtAPI):
    """FakeVirtAPI that records when the driver starts and stops waiting for events."""

    def __init__(self, log):
        super().__init__()
        self.log = log
        self.timeout = False

    def wait_for_instance_event(self, instance, event_names, deadline=300,
                                error_callback=None):
        api = self

        class Waiter(object):
            def __enter__(self):
                api.log.append(("wait", list(event_names)))

            def __exit__(self, *exc):
                api.log.append(("waited",))
                if api.timeout and not exc[0]:
                    raise berth_driver.eventlet.timeout.Timeout()
                return False

        return Waiter()


@pytest.fixture
def order():
    return []


@pytest.fixture(autouse=True)
def osvif(monkeypatch, order):
    rec = OsVifRecorder(order)
    monkeypatch.setattr(berth_driver.os_vif, "initialize", rec.initialize)
    monkeypatch.setattr(berth_driver.os_vif, "plug", rec.plug)
    monkeypatch.setattr(berth_driver.os_vif, "unplug", rec.unplug)
    return rec


@pytest.fixture
def drv(fake, conf, order):
    conf("host", "compute-1")
    conf("my_ip", "192.0.2.10")
    c = berth_client.BerthClient(fake.url, token="fake-token", timeout=5)
    return berth_driver.BerthDriver(RecordingVirtAPI(order), berth_api=c)


@pytest.fixture
def ctx():
    return nova_context.RequestContext("user", "project", auth_token="keystone-token")


def make_instance(ctx, **updates):
    flavor = objects.Flavor(id=7, name="m1.berth", flavorid="7", memory_mb=256, vcpus=2,
                            root_gb=3, ephemeral_gb=0, swap=0, rxtx_factor=1.0,
                            vcpu_weight=1, disabled=False, is_public=True,
                            extra_specs={"berth:pids_limit": "64", "hw:cpu_policy": "x"},
                            projects=[])
    fields = dict(uuid=UUID, id=42, image_ref=IMAGE, hostname="web-1",
                  user_data="ZWNobyBoaQ==", task_state=None, host="compute-1",
                  node="berth-test-node")
    fields.update(updates)
    inst = fake_instance.fake_instance_obj(ctx, flavor=flavor, **fields)
    inst.metadata = {"role": "web"}
    return inst


def image_meta(**props):
    return objects.ImageMeta.from_dict({
        "id": IMAGE, "name": "busybox", "container_format": "docker", "disk_format": "raw",
        "checksum": "d41d8cd98f00b204e9800998ecf8427e", "size": 1234, "min_disk": 0,
        "min_ram": 0, "properties": props})


# -- spawn --------------------------------------------------------------------------

def test_spawn_sends_the_instance(drv, fake, ctx):
    fake.add("POST", "/v1/instances", 201, instance_json(UUID))
    fake.add("POST", ACTION, 200, instance_json(UUID))
    inst = make_instance(ctx)
    nw = test_utils.get_test_network_info()
    drv.spawn(ctx, inst, image_meta(os_command_line="/bin/sh -c 'echo hi; sleep 9'"),
              [], "pw", {}, network_info=nw)
    req, start = fake.calls()
    assert (req.method, req.path) == ("POST", "/v1/instances")
    assert start.json == {"action": "start"}  # after network-vif-plugged (see below)
    body = req.json
    assert body.pop("network_info") == nw  # serialised as Nova's own JSON
    assert body.pop("start") is False
    assert body == {
        "uuid": UUID,
        "image": IMAGE,
        "name": "instance-0000002a",
        "hostname": "web-1",
        "flavor": {"vcpus": 2, "memory_mb": 256, "root_gb": 3,
                   "extra_specs": {"berth:pids_limit": "64", "hw:cpu_policy": "x"}},
        "metadata": {"role": "web"},
        "user_data": "ZWNobyBoaQ==",
        "command": ["/bin/sh", "-c", "echo hi; sleep 9"],
        "glance": {"id": IMAGE, "name": "busybox", "container_format": "docker",
                   "disk_format": "raw", "checksum": "d41d8cd98f00b204e9800998ecf8427e",
                   "size": 1234, "min_disk": 0, "min_ram": 0},
        "token": "keystone-token",
    }


def test_spawn_without_user_token(drv, fake, ctx, conf):
    conf("pass_user_token", False, group="berth")
    fake.add("POST", "/v1/instances", 201, instance_json(UUID))
    drv.spawn(ctx, make_instance(ctx, user_data=None), image_meta(), [], None, {})
    body = fake.calls()[0].json
    assert "token" not in body and "user_data" not in body and "command" not in body
    assert body["network_info"] == []


def test_spawn_powered_off(drv, fake, ctx):
    fake.add("POST", "/v1/instances", 201, instance_json(UUID))
    fake.add("POST", ACTION, 200, instance_json(UUID, power_state=4))
    drv.spawn(ctx, make_instance(ctx), image_meta(), [], None, {}, power_on=False)
    assert fake.calls()[1].json == {"action": "stop", "timeout": 0}


@pytest.mark.parametrize("status,message,nova_exc", [
    (400, "command: the image has no Entrypoint or Cmd", exception.ImageUnacceptable),
    (400, "image: container_format bare with disk_format qcow2 is a VM disk",
     exception.ImageUnacceptable),
    (400, "flavor.extra_specs.hw:cpuset: want a cpu list", exception.InvalidInput),
    (404, "image cedef40a not found", exception.ImageNotFound),
    # Not found on the host, not in the image: the VIF's bridge, a cgroup controller.
    (404, "attach port 3f6c2a1e of 5a4b3c2d to bridge brq6a1e2f3c-4d: bridge "
          "brq6a1e2f3c-4d does not exist", exception.VirtualInterfaceCreateException),
    (404, "create cgroup /sys/fs/cgroup/blkio/x: mkdir /sys/fs/cgroup/blkio: ENOENT",
     exception.NovaException),
    (507, "no space left for the image", exception.ComputeResourcesUnavailable),
    (500, "mount: EIO", exception.NovaException),
])
def test_spawn_failure_is_cleaned_up_and_translated(drv, fake, ctx, status, message,
                                                    nova_exc):
    fake.add("POST", "/v1/instances", status, error(status, message))
    fake.add("DELETE", INST, 404, error(404, "instance not found"))
    with pytest.raises(nova_exc) as e:
        drv.spawn(ctx, make_instance(ctx), image_meta(), [], None, {})
    assert type(e.value) is nova_exc  # not merely a subclass (NovaException is the base)
    assert [(r.method, r.path) for r in fake.calls()] == [("POST", "/v1/instances"),
                                                          ("DELETE", INST)]
    if status == 400:
        assert message in str(e.value)


def glance_error(code, kind, message):
    return {"error": {"code": code, "kind": kind, "message": message}}


@pytest.mark.parametrize("status,kind,nova_exc", [
    (401, "glance_unauthorized", exception.ImageNotAuthorized),
    (403, "glance_forbidden", exception.ImageNotAuthorized),
    (404, "glance_not_found", exception.ImageNotFound),
    (400, "glance_image_unacceptable", exception.ImageUnacceptable),
    (400, "glance_image_corrupt", exception.ImageUnacceptable),
    (409, "glance_image_not_active", exception.ImageUnacceptable),
    (502, "glance_unavailable", exception.NovaException),
])
def test_spawn_glance_refusal_becomes_an_image_exception(drv, fake, ctx, status, kind,
                                                         nova_exc):
    fake.add("POST", "/v1/instances", status,
             glance_error(status, kind, "glance: GET image x: HTTP %d" % status))
    fake.add("DELETE", INST, 404, error(404, "instance not found"))
    with pytest.raises(nova_exc) as e:
        drv.spawn(ctx, make_instance(ctx), image_meta(), [], None, {})
    if nova_exc is not exception.NovaException:
        assert not isinstance(e.value, (exception.InstanceNotFound, exception.InstanceExists))


def test_spawn_timeout_removes_what_berthd_may_still_make(drv, fake, ctx):
    drv.berth.spawn_timeout = 0.3
    fake.add("POST", "/v1/instances", 201, instance_json(UUID))
    fake.add("DELETE", INST, 204)
    fake.delay = 0.6
    with pytest.raises(exception.HypervisorUnavailable):
        drv.spawn(ctx, make_instance(ctx), image_meta(), [], None, {})
    fake.delay = 0
    assert ("DELETE", INST) in [(r.method, r.path) for r in fake.calls()]


def test_spawn_of_existing_uuid_does_not_delete_it(drv, fake, ctx):
    fake.add("POST", "/v1/instances", 409, error(409, "instance exists"))
    with pytest.raises(exception.InstanceExists):
        drv.spawn(ctx, make_instance(ctx), image_meta(), [], None, {})
    assert len(fake.calls()) == 1


def test_spawn_bad_extra_spec_fails_before_any_request(drv, fake, ctx):
    inst = make_instance(ctx)
    inst.flavor.extra_specs = {"quota:cpu_quota": "0"}
    with pytest.raises(exception.InvalidInput) as e:
        drv.spawn(ctx, inst, image_meta(), [], None, {})
    assert "quota:cpu_quota" in str(e.value)
    assert fake.calls() == []


# -- queries ------------------------------------------------------------------------

@pytest.mark.parametrize("code", [0, 1, 3, 4, 6, 7])
def test_get_info_power_state(drv, fake, ctx, code):
    fake.add("GET", INST, 200, instance_json(UUID, power_state=code))
    info = drv.get_info(make_instance(ctx))
    assert isinstance(info, hardware.InstanceInfo)
    assert info.state == code and info.internal_id == UUID


def test_get_info_unknown_instance(drv, fake, ctx):
    fake.add("GET", INST, 404, error(404, "instance not found"))
    with pytest.raises(exception.InstanceNotFound):
        drv.get_info(make_instance(ctx))


def test_list_and_exists(drv, fake, ctx):
    other = "11111111-2222-4333-8444-555555555555"
    fake.set("GET", "/v1/instances", 200, {"instances": [
        instance_json(UUID, name="instance-0000002a"), instance_json(other, name="b")]})
    assert drv.list_instances() == ["instance-0000002a", "b"]
    assert drv.list_instance_uuids() == [UUID, other]
    assert drv.get_num_instances() == 2
    fake.add("GET", INST, 200, instance_json(UUID))
    assert drv.instance_exists(make_instance(ctx))
    fake.add("GET", INST, 404, error(404, "not found"))
    assert not drv.instance_exists(make_instance(ctx))


def test_console_output_is_bounded(drv, fake, ctx):
    big = "x" * 200000 + "tail\n"
    fake.add("GET", INST + "/console", 200, {"output": big})
    out = drv.get_console_output(ctx, make_instance(ctx))
    assert len(out) == berth_driver.MAX_CONSOLE_BYTES and out.endswith("tail\n")
    assert fake.calls()[0].query == {"lines": ["1000"]}


def test_diagnostics_from_stats(drv, fake, ctx):
    fake.add("GET", INST, 200, instance_json(UUID))
    fake.add("GET", INST + "/stats", 200, {
        "cpu": {"usage_ns": 5000, "user_ns": 3000, "system_ns": 2000, "throttled_periods": 1},
        "memory": {"usage_bytes": 64 << 20, "max_usage_bytes": 70 << 20,
                   "limit_bytes": 256 << 20, "cache_bytes": 0, "oom_kills": 0},
        "pids": {"current": 3, "limit": 64}, "io": {"read_bytes": 10, "write_bytes": 20}})
    d = drv.get_diagnostics(make_instance(ctx))
    assert d["state"] == "RUNNING" and d["cpu_time_ns"] == 5000
    assert d["memory_limit_bytes"] == 256 << 20 and d["pids_current"] == 3
    assert d["uptime"] > 0

    fake.add("GET", INST, 200, instance_json(UUID))
    fake.add("GET", INST + "/stats", 200, {
        "cpu": {"usage_ns": 5000}, "memory": {"usage_bytes": 64 << 20,
                                              "limit_bytes": 256 << 20},
        "pids": {}, "io": {"read_bytes": 10, "write_bytes": 20}})
    diags = drv.get_instance_diagnostics(make_instance(ctx))
    assert diags.state == "running" and diags.hypervisor == "berth"
    assert diags.memory_details.maximum == 256 and diags.memory_details.used == 64
    assert diags.cpu_details[0].time == 5000 and diags.disk_details[0].write_bytes == 20


def test_diagnostics_of_stopped_instance(drv, fake, ctx):
    fake.add("GET", INST, 200, instance_json(UUID, power_state=4))
    fake.add("GET", INST + "/stats", 409, error(409, "cannot read stats while SHUTDOWN"))
    assert drv.get_diagnostics(make_instance(ctx)) == {"state": "SHUTDOWN", "uptime": 0}


# -- destroy ------------------------------------------------------------------------

def test_destroy_deletes(drv, fake, ctx):
    fake.add("DELETE", INST, 204)
    drv.destroy(ctx, make_instance(ctx), None)
    assert [(r.method, r.path) for r in fake.calls()] == [("DELETE", INST)]


def test_destroy_missing_is_fine(drv, fake, ctx):
    fake.add("DELETE", INST, 404, error(404, "not found"))
    drv.destroy(ctx, make_instance(ctx), None)


def test_destroy_keeping_disks_stops(drv, fake, ctx):
    fake.add("POST", ACTION, 200, instance_json(UUID, power_state=4))
    drv.destroy(ctx, make_instance(ctx), None, destroy_disks=False)
    assert fake.calls()[0].json == {"action": "stop", "timeout": 0}


def test_destroy_during_same_host_resize_revert_keeps_instance(drv, fake, ctx):
    drv.destroy(ctx, make_instance(ctx, task_state=task_states.RESIZE_REVERTING), None)
    assert fake.calls() == []


# -- power --------------------------------------------------------------------------

def test_soft_reboot(drv, fake, ctx):
    fake.add("POST", ACTION, 200, instance_json(UUID))
    drv.reboot(ctx, make_instance(ctx), None, "SOFT")
    assert fake.calls()[0].json == {"action": "reboot", "type": "SOFT", "timeout": 60}


def test_soft_reboot_refused_falls_back_to_hard(drv, fake, ctx):
    fake.add("POST", ACTION, 409, error(409, "cannot soft-reboot while SHUTDOWN"))
    fake.add("POST", ACTION, 200, instance_json(UUID))
    drv.reboot(ctx, make_instance(ctx), None, "SOFT")
    assert [r.json for r in fake.calls()] == [
        {"action": "reboot", "type": "SOFT", "timeout": 60},
        {"action": "reboot", "type": "HARD"}]


def test_hard_reboot(drv, fake, ctx):
    fake.add("POST", ACTION, 200, instance_json(UUID))
    drv.reboot(ctx, make_instance(ctx), None, "HARD")
    assert fake.calls()[0].json == {"action": "reboot", "type": "HARD"}


def test_reboot_unknown_instance(drv, fake, ctx):
    fake.add("POST", ACTION, 404, error(404, "not found"))
    with pytest.raises(exception.InstanceNotFound):
        drv.reboot(ctx, make_instance(ctx), None, "HARD")


def test_power_off_passes_timeout(drv, fake, ctx):
    fake.add("POST", ACTION, 200, instance_json(UUID, power_state=4))
    fake.add("POST", ACTION, 200, instance_json(UUID, power_state=4))
    drv.power_off(make_instance(ctx), timeout=30, retry_interval=5)
    drv.power_off(make_instance(ctx))
    assert [r.json for r in fake.calls()] == [{"action": "stop", "timeout": 30},
                                              {"action": "stop", "timeout": 0}]


def test_power_off_already_off(drv, fake, ctx):
    fake.add("POST", ACTION, 409, error(409, "cannot stop while SHUTDOWN"))
    fake.add("GET", INST, 200, instance_json(UUID, power_state=4))
    drv.power_off(make_instance(ctx), timeout=5)


def test_conflict_in_another_state_is_invalid_state(drv, fake, ctx):
    fake.add("POST", ACTION, 409, error(409, "cannot pause while SHUTDOWN"))
    fake.set("GET", INST, 200, instance_json(UUID, power_state=4))
    with pytest.raises(exception.InstanceInvalidState) as e:
        drv.pause(make_instance(ctx))
    assert "SHUTDOWN" in str(e.value)


def test_power_on(drv, fake, ctx):
    fake.add("POST", ACTION, 200, instance_json(UUID))
    drv.power_on(ctx, make_instance(ctx), None)
    assert fake.calls()[0].json == {"action": "start"}


def test_power_on_running_is_noop(drv, fake, ctx):
    fake.add("POST", ACTION, 409, error(409, "cannot start while RUNNING"))
    fake.add("GET", INST, 200, instance_json(UUID, power_state=1))
    drv.power_on(ctx, make_instance(ctx), None)
    assert len(fake.calls()) == 2


def test_power_on_paused_reboots_hard(drv, fake, ctx):
    fake.add("POST", ACTION, 409, error(409, "cannot start while PAUSED"))
    fake.add("GET", INST, 200, instance_json(UUID, power_state=3))
    fake.add("POST", ACTION, 200, instance_json(UUID))
    drv.power_on(ctx, make_instance(ctx), None)
    assert fake.calls()[2].json == {"action": "reboot", "type": "HARD"}


@pytest.mark.parametrize("method,action,target", [
    ("pause", "pause", 3), ("unpause", "unpause", 1), ("suspend", "suspend", 7),
    ("resume", "resume", 1)])
def test_freezer_actions_and_repeats(drv, fake, ctx, method, action, target):
    inst = make_instance(ctx)
    call = {"pause": lambda: drv.pause(inst), "unpause": lambda: drv.unpause(inst),
            "suspend": lambda: drv.suspend(ctx, inst),
            "resume": lambda: drv.resume(ctx, inst, None)}[method]
    fake.add("POST", ACTION, 200, instance_json(UUID, power_state=target))
    call()
    assert fake.calls()[0].json == {"action": action}
    # Repeated when already there: berthd's 409 is not an error.
    fake.add("POST", ACTION, 409, error(409, "wrong state"))
    fake.add("GET", INST, 200, instance_json(UUID, power_state=target))
    call()


def test_resume_state_on_host_boot(drv, fake, ctx):
    fake.add("GET", INST, 200, instance_json(UUID, power_state=6))
    fake.add("POST", ACTION, 200, instance_json(UUID))
    drv.resume_state_on_host_boot(ctx, make_instance(ctx), None)
    assert fake.calls()[1].json == {"action": "reboot", "type": "HARD"}
    fake.add("GET", INST, 200, instance_json(UUID, power_state=1))
    drv.resume_state_on_host_boot(ctx, make_instance(ctx), None)
    assert len(fake.calls()) == 3


# -- host ---------------------------------------------------------------------------

def test_available_resource(drv, fake):
    fake.set("GET", "/v1/host", 200, HOST)
    res = drv.get_available_resource("berth-test-node")
    assert res["vcpus"] == 8 and res["memory_mb"] == 16000 and res["local_gb"] == 100
    assert res["vcpus_used"] == 2 and res["memory_mb_used"] == 1024
    assert res["local_gb_used"] == 10 and res["disk_available_least"] == 80
    assert res["hypervisor_type"] == "berth"
    assert res["hypervisor_version"] == 3001
    assert res["hypervisor_hostname"] == "berth-test-node"
    assert res["cpu_info"] == '{"arch": "x86_64"}'
    assert ("x86_64", "docker", "exe") in res["supported_instances"]


def test_update_provider_tree(drv, fake, conf):
    conf("cpu_allocation_ratio", 4.0)
    conf("reserved_host_memory_mb", 512)
    conf("reserved_host_disk_mb", 2048)
    fake.set("GET", "/v1/host", 200, dict(HOST, disk_gb={"total": 0, "used": 0, "free": 0}))
    tree = provider_tree.ProviderTree()
    tree.new_root("node", "00000000-0000-0000-0000-000000000001")
    drv.update_provider_tree(tree, "node")
    inv = tree.data("node").inventory
    assert set(inv) == {"VCPU", "MEMORY_MB"}  # DISK_GB total 0 is left out
    assert inv["VCPU"] == {"total": 8, "min_unit": 1, "max_unit": 8, "step_size": 1,
                           "allocation_ratio": 4.0, "reserved": 0}
    assert inv["MEMORY_MB"]["total"] == 16000 and inv["MEMORY_MB"]["reserved"] == 512
    assert inv["MEMORY_MB"]["allocation_ratio"] == CONF.initial_ram_allocation_ratio
    fake.set("GET", "/v1/host", 200, HOST)
    drv.update_provider_tree(tree, "node")
    assert tree.data("node").inventory["DISK_GB"]["reserved"] == 2


def test_nodes_use_berthd_hostname_and_keep_it(drv, fake):
    fake.add("GET", "/v1/host", 200, HOST)
    assert drv.get_available_nodes() == ["berth-test-node"]
    fake.set("GET", "/v1/host", 500, error(500, "down"))
    assert drv.get_available_nodes(refresh=True) == ["berth-test-node"]
    assert drv.node_is_available("berth-test-node")
    assert not drv.node_is_available("other")


def test_init_host_bad_token(drv, fake):
    drv.berth._token = "wrong"
    with pytest.raises(exception.NovaException) as e:
        drv.init_host("compute-1")
    assert "token" in str(e.value)


def test_init_host_unreachable(drv):
    drv.berth.api_url = "http://127.0.0.1:9"
    with pytest.raises(exception.HypervisorUnavailable):
        drv.init_host("compute-1")


def test_init_host(drv, fake):
    fake.set("GET", "/v1/host", 200, HOST)
    fake.set("GET", "/v1/openapi.json", 200, {"paths": {}})
    drv.init_host("compute-1")
    assert drv.get_available_nodes() == ["berth-test-node"]


def test_host_ip_and_uptime(drv):
    assert drv.get_host_ip_addr() == "192.0.2.10"
    assert "load average" in drv.get_host_uptime()
    stats = drv.get_host_cpu_stats()
    assert set(stats) == {"kernel", "idle", "user", "iowait", "frequency"}


def test_capabilities_are_nova_keys():
    assert set(berth_driver.BerthDriver.capabilities) == \
        set(virt_driver.ComputeDriver.capabilities)
    caps = berth_driver.BerthDriver.capabilities
    assert caps["supports_migrate_to_same_host"] and not caps["supports_evacuate"]
    assert not caps["has_imagecache"] and not caps["supports_image_type_qcow2"]


# -- networking ---------------------------------------------------------------------

PORT = "8d5b1f2e-3c4a-4b6d-9e7f-0a1b2c3d4e5f"


def bridge_vif(active=False, port=PORT):
    """A Neutron port on a Linux bridge, as Nova's network_info carries it."""
    from nova.network import model
    subnet = model.Subnet(cidr="10.0.0.0/24", gateway=model.IP(address="10.0.0.1",
                                                              type="gateway"),
                          ips=[model.FixedIP(address="10.0.0.5")],
                          dns=[model.IP(address="10.0.0.2")])
    network = model.Network(id="6a1e2f3c-4d5b-4c6d-8e7f-9a0b1c2d3e4f", bridge="brq6a1e2f3c-4d", label="private",
                            subnets=[subnet], mtu=1450, should_create_bridge=True)
    return model.VIF(id=port, address="fa:16:3e:11:22:33", network=network,
                     type=model.VIF_TYPE_BRIDGE, devname="tap" + port[:11],
                     vnic_type=model.VNIC_TYPE_NORMAL, active=active,
                     details={}, ovs_interfaceid=None)


def test_spawn_plugs_before_waiting_and_starts_after_the_events(drv, fake, ctx, order,
                                                                  conf):
    """The order of the libvirt driver's _create_guest_with_network: events registered,
    VIFs plugged (os-vif) and the instance created with its process held (berthd
    attaches the ports: that is what makes Neutron send network-vif-plugged), the wait,
    then the start."""
    from nova.network import model
    fake.add("POST", "/v1/instances", 201, instance_json(UUID, power_state=0))
    fake.add("POST", ACTION, 200, instance_json(UUID))
    nw = model.NetworkInfo([bridge_vif(active=False),
                            bridge_vif(active=True, port="9" + PORT[1:])])
    real_create = drv.berth.create_instance

    def create(*a, **kw):
        order.append(("create", kw["start"]))
        return real_create(*a, **kw)

    drv.berth.create_instance = create
    drv.spawn(ctx, make_instance(ctx), image_meta(), [], None, {}, network_info=nw)
    assert order == [
        ("wait", [("network-vif-plugged", PORT)]),  # only the port not yet active
        ("os_vif.initialize",),
        ("os_vif.plug", "VIFBridge", PORT, UUID),
        ("os_vif.plug", "VIFBridge", "9" + PORT[1:], UUID),
        ("create", False),
        ("waited",),
    ]
    create_req, start_req = fake.calls()
    vif = create_req.json["network_info"][0]
    assert (vif["type"], vif["network"]["bridge"], vif["address"]) == \
        ("bridge", "brq6a1e2f3c-4d", "fa:16:3e:11:22:33")
    assert start_req.json == {"action": "start"}


def test_spawn_without_events_starts_at_once(drv, fake, ctx, order, conf):
    conf("vif_plugging_timeout", 0)
    fake.add("POST", "/v1/instances", 201, instance_json(UUID))
    from nova.network import model
    drv.spawn(ctx, make_instance(ctx), image_meta(), [], None, {},
              network_info=model.NetworkInfo([bridge_vif(active=False)]))
    (req,) = fake.calls()
    assert "start" not in req.json
    assert order[0] == ("wait", [])


@pytest.mark.parametrize("fatal", [True, False])
def test_spawn_vif_plugging_timeout(drv, fake, ctx, conf, fatal):
    conf("vif_plugging_is_fatal", fatal)
    drv.virtapi.timeout = True
    fake.add("POST", "/v1/instances", 201, instance_json(UUID, power_state=0))
    fake.add("DELETE", INST, 204)
    fake.add("POST", ACTION, 200, instance_json(UUID))
    from nova.network import model
    nw = model.NetworkInfo([bridge_vif(active=False)])
    if fatal:
        with pytest.raises(exception.VirtualInterfaceCreateException):
            drv.spawn(ctx, make_instance(ctx), image_meta(), [], None, {}, network_info=nw)
        assert [(r.method, r.path) for r in fake.calls()] == [("POST", "/v1/instances"),
                                                              ("DELETE", INST)]
    else:
        drv.spawn(ctx, make_instance(ctx), image_meta(), [], None, {}, network_info=nw)
        assert [(r.method, r.path) for r in fake.calls()] == [("POST", "/v1/instances"),
                                                              ("POST", ACTION)]


def test_spawn_os_vif_failure_removes_nothing_made(drv, fake, ctx, osvif):
    from nova.network import model
    osvif.fail = RuntimeError("cannot create bridge")
    fake.add("DELETE", INST, 404, error(404, "instance not found"))
    with pytest.raises(exception.InternalError):
        drv.spawn(ctx, make_instance(ctx), image_meta(), [], None, {},
                  network_info=model.NetworkInfo([bridge_vif()]))
    assert ("POST", "/v1/instances") not in [(r.method, r.path) for r in fake.calls()]


def test_spawn_os_vif_failure_names_the_plugins_error(drv, fake, ctx, osvif):
    """os-vif wraps the plugin's error in PlugException, whose own message stays
    unformatted when that error's str() fails (oslo.config's RequiredOptError for a missing
    lock_path did, in the real plug): the plugin's error is what the fault must say."""
    import os_vif.exception
    from nova.network import model

    class Unprintable(Exception):
        def __str__(self):
            raise ValueError("no str")

    osvif.fail = os_vif.exception.PlugException(vif="v", err=RuntimeError("no bridge brq1"))
    fake.add("DELETE", INST, 404, error(404, "instance not found"))
    with pytest.raises(exception.InternalError) as e:
        drv.spawn(ctx, make_instance(ctx), image_meta(), [], None, {},
                  network_info=model.NetworkInfo([bridge_vif()]))
    assert "RuntimeError: no bridge brq1" in str(e.value)
    osvif.fail = os_vif.exception.PlugException(vif="v", err=Unprintable("lock_path"))
    with pytest.raises(exception.InternalError) as e:
        drv.spawn(ctx, make_instance(ctx), image_meta(), [], None, {},
                  network_info=model.NetworkInfo([bridge_vif()]))
    assert "Unprintable: ('lock_path',)" in str(e.value)


def test_plug_and_unplug_vifs_use_os_vif(drv, ctx, order):
    from nova.network import model
    ovs = model.VIF(id=PORT, address="fa:16:3e:00:00:01", type=model.VIF_TYPE_OVS,
                    devname="tap" + PORT[:11], ovs_interfaceid=PORT,
                    details={model.VIF_DETAILS_PORT_FILTER: True},
                    network=model.Network(id="7b2e3f4c-5d6b-4c7d-8e8f-0a1b2c3d4e5f", bridge="br-int", subnets=[]))
    drv.plug_vifs(make_instance(ctx), [ovs])
    drv.unplug_vifs(make_instance(ctx), [ovs])
    assert order[1:] == [("os_vif.plug", "VIFOpenVSwitch", PORT, UUID),
                         ("os_vif.unplug", "VIFOpenVSwitch", PORT, UUID)]


def test_attach_interface_plugs_then_asks_berthd(drv, fake, ctx, order):
    fake.add("POST", INST + "/interfaces", 201, {"ifname": "eth1", "port_id": PORT})
    drv.attach_interface(ctx, make_instance(ctx), image_meta(), bridge_vif())
    (req,) = fake.calls()
    assert req.method == "POST" and req.json["id"] == PORT
    assert req.json["network"]["bridge"] == "brq6a1e2f3c-4d"
    assert ("os_vif.plug", "VIFBridge", PORT, UUID) in order


def test_attach_interface_failure_unplugs_and_raises(drv, fake, ctx, order):
    fake.add("POST", INST + "/interfaces", 409, error(409, "port already attached"))
    with pytest.raises(exception.InterfaceAttachFailed):
        drv.attach_interface(ctx, make_instance(ctx), image_meta(), bridge_vif())
    assert order[-1] == ("os_vif.unplug", "VIFBridge", PORT, UUID)


def test_detach_interface(drv, fake, ctx, order):
    fake.add("DELETE", INST + "/interfaces/" + PORT, 204)
    drv.detach_interface(ctx, make_instance(ctx), bridge_vif())
    assert [(r.method, r.path) for r in fake.calls()] == [("DELETE",
                                                           INST + "/interfaces/" + PORT)]
    assert order[-1] == ("os_vif.unplug", "VIFBridge", PORT, UUID)


def test_detach_interface_already_gone_is_fine_other_errors_are_not(drv, fake, ctx):
    fake.add("DELETE", INST + "/interfaces/" + PORT, 404, error(404, "no interface"))
    drv.detach_interface(ctx, make_instance(ctx), bridge_vif())
    fake.set("DELETE", INST + "/interfaces/" + PORT, 500, error(500, "ovsdb down"))
    with pytest.raises(exception.InterfaceDetachFailed):
        drv.detach_interface(ctx, make_instance(ctx), bridge_vif())


# -- rebuild ------------------------------------------------------------------------

def test_rebuild_asks_berthd(drv, fake, ctx):
    fake.add("POST", ACTION, 200, instance_json(UUID))
    inst = make_instance(ctx, task_state=task_states.REBUILDING)
    saved = []
    inst.save = lambda expected_task_state=None: saved.append(
        (inst.task_state, expected_task_state))
    drv.rebuild(ctx, inst, image_meta(os_command_line="/bin/app --x"), [], None, {}, [],
                None, None, network_info=[])
    (req,) = fake.calls()
    # A Glance image berthd has not synced yet is downloaded as for a spawn: the same
    # hints and the user's token.
    assert req.json == {
        "action": "rebuild", "image": IMAGE, "command": ["/bin/app", "--x"],
        "glance": {"id": IMAGE, "name": "busybox", "container_format": "docker",
                   "disk_format": "raw", "checksum": "d41d8cd98f00b204e9800998ecf8427e",
                   "size": 1234, "min_disk": 0, "min_ram": 0},
        "token": "keystone-token"}
    assert saved == [(task_states.REBUILD_SPAWNING, [task_states.REBUILDING])]


def test_rebuild_evacuate_falls_back_to_nova(drv, fake, ctx):
    with pytest.raises(NotImplementedError):
        drv.rebuild(ctx, make_instance(ctx), image_meta(), [], None, {}, [], None, None,
                    evacuate=True)
    assert fake.calls() == []


def test_rebuild_errors_are_translated(drv, fake, ctx):
    inst = make_instance(ctx, task_state=task_states.REBUILDING)
    inst.save = lambda expected_task_state=None: None

    def rebuild():
        drv.rebuild(ctx, inst, image_meta(), [], None, {}, [], None, None)

    # An unknown image is the image's fault: InstanceNotFound would make Nova believe the
    # server was deleted meanwhile and leave it in REBUILD without a word.
    fake.add("POST", ACTION, 404, error(404, 'image "x" not found'))
    with pytest.raises(exception.ImageNotFound):
        rebuild()
    fake.set("POST", ACTION, 404, error(404, "instance not found"))
    with pytest.raises(exception.InstanceNotFound):
        rebuild()
    fake.set("POST", ACTION, 403, glance_error(403, "glance_forbidden", "glance refused"))
    with pytest.raises(exception.ImageNotAuthorized):
        rebuild()
    fake.set("POST", ACTION, 409, error(409, "instance is NOSTATE"))
    fake.add("GET", INST, 200, instance_json(UUID))
    with pytest.raises(exception.InstanceInvalidState):
        rebuild()


# -- snapshot -----------------------------------------------------------------------

def test_snapshot_of_missing_instance(drv, fake, ctx):
    fake.add("GET", INST, 404, error(404, "not found"))
    with pytest.raises(exception.InstanceNotRunning):
        drv.snapshot(ctx, make_instance(ctx), "snap-id", lambda **kw: None)


def test_snapshot_on_berthd_without_it(drv, fake, ctx):
    fake.add("GET", INST, 200, instance_json(UUID))
    fake.set("GET", "/v1/openapi.json", 200, {"paths": {"/v1/instances": {"get": {}}}})
    states = []
    with pytest.raises(NotImplementedError):
        drv.snapshot(ctx, make_instance(ctx), "snap-id", lambda **kw: states.append(kw))
    assert states == []


def test_snapshot(drv, fake, ctx, monkeypatch):
    from nova.image import glance
    monkeypatch.setattr(glance.API, "get",
                        lambda self, c, image_id: {"id": image_id, "name": "snap-1"})
    fake.add("GET", INST, 200, instance_json(UUID))
    fake.set("GET", "/v1/openapi.json", 200,
             {"paths": {"/v1/instances/{uuid}/snapshot": {"post": {}}}})
    fake.add("POST", INST + "/snapshot", 201, {"image_id": "snap-id"})
    states = []
    drv.snapshot(ctx, make_instance(ctx), "snap-id", lambda **kw: states.append(kw))
    assert states == [
        {"task_state": task_states.IMAGE_PENDING_UPLOAD},
        {"task_state": task_states.IMAGE_UPLOADING,
         "expected_state": task_states.IMAGE_PENDING_UPLOAD}]
    assert fake.calls("POST")[0].json == {
        "image_id": "snap-id", "name": "snap-1", "token": "keystone-token",
        "container_format": "docker", "disk_format": "raw"}


@pytest.mark.parametrize("status,kind,nova_exc", [
    (404, "glance_not_found", exception.ImageNotFound),
    (403, "glance_forbidden", exception.ImageNotAuthorized),
    (409, "glance_image_not_queued", exception.ImageUnacceptable),
    (404, "not_found", exception.InstanceNotFound),
])
def test_snapshot_errors(drv, fake, ctx, monkeypatch, status, kind, nova_exc):
    from nova.image import glance
    monkeypatch.setattr(glance.API, "get",
                        lambda self, c, image_id: {"id": image_id, "name": "snap-1"})
    fake.add("GET", INST, 200, instance_json(UUID))
    fake.set("GET", "/v1/openapi.json", 200,
             {"paths": {"/v1/instances/{uuid}/snapshot": {"post": {}}}})
    fake.add("POST", INST + "/snapshot", status, glance_error(status, kind, "refused"))
    with pytest.raises(nova_exc):
        drv.snapshot(ctx, make_instance(ctx), "snap-id", lambda **kw: None)


# -- resize -------------------------------------------------------------------------

def new_flavor():
    return objects.Flavor(id=8, name="m1.bigger", flavorid="8", memory_mb=512, vcpus=1,
                          root_gb=3, ephemeral_gb=0, swap=0, extra_specs={})


def test_resize_elsewhere_rolls_back(drv, fake, ctx):
    fake.set("GET", "/v1/host", 200, HOST)
    with pytest.raises(exception.InstanceFaultRollback):
        drv.migrate_disk_and_power_off(ctx, make_instance(ctx), "192.0.2.99", new_flavor(),
                                       None)
    assert fake.calls("POST") == []


def test_resize_same_host_is_live(drv, fake, ctx):
    fake.add("POST", ACTION, 200, instance_json(UUID))
    out = drv.migrate_disk_and_power_off(ctx, make_instance(ctx), "192.0.2.10",
                                         new_flavor(), None)
    assert out == ""
    assert fake.calls()[0].json == {
        "action": "resize",
        "flavor": {"vcpus": 1, "memory_mb": 512, "root_gb": 3, "extra_specs": {}}}


def test_resize_refused_rolls_back(drv, fake, ctx):
    fake.add("POST", ACTION, 409, error(409, "memory limit below current use"))
    with pytest.raises(exception.InstanceFaultRollback):
        drv.migrate_disk_and_power_off(ctx, make_instance(ctx), "compute-1", new_flavor(),
                                       None)


def test_finish_migration_and_revert(drv, fake, ctx):
    inst = make_instance(ctx)
    fake.set("POST", ACTION, 200, instance_json(UUID))
    drv.finish_migration(ctx, None, inst, "", None, image_meta(), True, {}, power_on=True)
    drv.finish_revert_migration(ctx, inst, None, None, power_on=False)
    drv.confirm_migration(ctx, None, inst, None)
    assert [r.json["action"] for r in fake.calls()] == ["resize", "start", "resize"]
    assert fake.calls()[2].json["flavor"]["vcpus"] == 2
