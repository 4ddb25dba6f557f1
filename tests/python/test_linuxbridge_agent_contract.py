"""What neutron-linuxbridge-agent expects of a hypervisor, checked against Berth without
OpenStack: Nova's own code (nova.network.neutron.API._build_vif_model) turns a Neutron
port bound by ML2's linuxbridge driver into the VIF of network_info; BerthDriver.spawn
plugs it through the real os-vif (its linux_bridge plugin makes the brq bridge, through
its privsep daemon) and asks a real berthd to create the instance; then Neutron's own
agent code must find the instance's host device:

- the device is named lb_utils.get_tap_device_name(port id) ("tap" + id[:11]) and
  LinuxBridgeManager.get_all_devices() (every "tap*" netdev) lists it: that scan is how
  the agent finds ports to bind and report up (network-vif-plugged);
- it is on the bridge LinuxBridgeManager.get_bridge_name(network id) names, which is the
  one the agent later enslaves the physical interface into; the agent skips enslaving
  compute ports itself ("added elsewhere"), so the hypervisor must have done it;
- inside, eth0 has the port's MAC, fixed IP, gateway and the network's MTU;
- delete removes the device, so the agent's next scan reports it gone.

Runs in a private network and mount namespace (unshare, a fresh sysfs): the bridge, the
veth and berthd's port exist only there and vanish with it. Root and a built berthd
needed (skipped otherwise). 30-50 s on the shared 2-core machine, most of it importing
Nova and Neutron.

    BERTH_BUILD_DIR=$PWD/build /usr/bin/python3 -m pytest tests/python/test_linuxbridge_agent_contract.py
"""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

PORT_ID = "3f6c2a1e-8b4d-4e5f-9a0b-1c2d3e4f5a6b"
NET_ID = "b7e9d1c3-2a4f-4b6d-8e0f-1a2b3c4d5e6f"
SUBNET_ID = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
MAC = "fa:16:3e:0a:1b:2c"
IP = "10.231.0.17"
MTU = 1450
INSTANCE = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
IMAGE = "cedef40a-ed67-4d10-800e-17455edce175"


def _skip_reason():
    if os.geteuid() != 0:
        return "needs root (a bridge, a veth and a berthd)"
    sys.path.insert(0, HERE)
    import berthd_process
    reason = berthd_process.missing_reason()
    if reason:
        return reason
    import importlib.util
    for module, what in (("neutron.plugins.ml2.drivers.linuxbridge.agent",
                          "neutron's Linux bridge agent code (python3-neutron)"),
                         ("vif_plug_linux_bridge", "os-vif's linux_bridge plugin")):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            return what + " is not installed"
    return None


def test_agent_finds_and_binds_what_berth_plugs():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [HERE, os.path.join(REPO, "driver", "nova")]))
    r = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private",
                        sys.executable, os.path.abspath(__file__), "inside"],
                       env=env, capture_output=True, text=True, timeout=180)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr[-4000:])
    assert r.returncode == 0, "the check inside the namespace failed (output above)"
    assert "ALL CHECKS PASSED" in r.stdout


# ---------------------------------------------------------------------------------------
# Inside the private namespaces (the test's child process).

class FakeNeutronClient(object):
    """The three calls _build_vif_model makes, answered as neutron-server answers them
    for a port on a flat network without DHCP."""

    def list_subnets(self, **kw):
        return {"subnets": [{"id": SUBNET_ID, "network_id": NET_ID, "cidr": "10.231.0.0/24",
                             "gateway_ip": "10.231.0.1", "enable_dhcp": False,
                             "dns_nameservers": [], "host_routes": [], "ip_version": 4}]}

    def list_ports(self, **kw):
        return {"ports": []}  # no DHCP port

    def list_floatingips(self, **kw):
        return {"floatingips": []}


def neutron_port():
    """A port as ML2's linuxbridge mechanism driver leaves it, bound to this host and not
    yet ACTIVE (the agent has not seen its tap)."""
    return {"id": PORT_ID, "network_id": NET_ID, "mac_address": MAC,
            "admin_state_up": True, "status": "DOWN", "device_owner": "compute:nova",
            "device_id": INSTANCE, "tenant_id": "p", "project_id": "p",
            "fixed_ips": [{"subnet_id": SUBNET_ID, "ip_address": IP}],
            "binding:vif_type": "bridge", "binding:vnic_type": "normal",
            "binding:host_id": "compute-1", "binding:profile": {},
            "binding:vif_details": {"port_filter": True, "connectivity": "l2"}}


def nova_vif():
    from nova import context as nova_context
    from nova.network import neutron as nova_neutron
    api = nova_neutron.API()
    client = FakeNeutronClient()
    nova_neutron.get_client = lambda *a, **kw: client
    api._get_physnet_tunneled_info = lambda *a, **kw: ("berthe2e", False)
    ctx = nova_context.RequestContext("user", "p", is_admin=True)
    networks = [{"id": NET_ID, "name": "berth-e2e-net", "tenant_id": "p", "mtu": MTU}]
    vif = api._build_vif_model(ctx, client, neutron_port(), networks, [])
    # As _get_instance_nw_info returns it (this moves should_create_bridge into the
    # network's meta, where os-vif's conversion looks for it).
    from nova.network import model as network_model
    return ctx, network_model.NetworkInfo.hydrate(network_model.NetworkInfo([vif]))[0]


def check(what, got, want):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))
    print("ok: %s = %r" % (what, got))


def sysfs_master(dev):
    path = "/sys/class/net/%s/master" % dev
    return os.path.basename(os.readlink(path)) if os.path.exists(path) else None


def fresh_sysfs():
    """/sys of this network namespace (its class/net lists only our devices), keeping the
    host's cgroup mounts underneath (berthd needs them)."""
    import tempfile
    keep = tempfile.mkdtemp(prefix="berth-lb-cgroup-")
    subprocess.run(["mount", "--rbind", "/sys/fs/cgroup", keep], check=True)
    subprocess.run(["mount", "-t", "sysfs", "sysfs", "/sys"], check=True)
    subprocess.run(["mount", "--rbind", keep, "/sys/fs/cgroup"], check=True)
    subprocess.run(["umount", "-l", keep], check=True)
    os.rmdir(keep)


def inside():
    fresh_sysfs()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    from nova import objects
    import nova.conf
    from nova.network import model as network_model
    from nova.tests.unit import fake_instance
    from nova.virt import fake as fake_virt
    from neutron.plugins.ml2.drivers.linuxbridge.agent.common import utils as lb_utils
    from neutron.plugins.ml2.drivers.linuxbridge.agent import (
        linuxbridge_neutron_agent as lb_agent)

    import berthd_process
    from nova_berth import driver as berth_driver

    objects.register_all()
    conf = nova.conf.CONF
    conf([], project="nova", default_config_files=[], default_config_dirs=[])
    # No Neutron here to send network-vif-plugged: create and start in one call (the
    # e2e script covers the wait with the real agent).
    conf.set_override("vif_plugging_timeout", 0)
    conf.set_override("host", "compute-1")
    import tempfile
    conf.set_override("lock_path", tempfile.mkdtemp(prefix="berth-lb-locks-"),
                      group="oslo_concurrency")  # os-vif's ensure_bridge takes a file lock

    ctx, vif = nova_vif()
    tap = lb_utils.get_tap_device_name(PORT_ID)
    bridge = lb_agent.LinuxBridgeManager.get_bridge_name(NET_ID)
    check("Nova's devname is the agent's tap name", vif["devname"], tap)
    check("Nova's bridge is the agent's bridge", vif["network"]["bridge"], bridge)
    check("VIF type", vif["type"], network_model.VIF_TYPE_BRIDGE)
    check("VIF not active yet (Nova waits for network-vif-plugged)", vif["active"], False)

    daemon = berthd_process.Berthd().start()
    try:
        daemon.import_busybox([IMAGE])
        drv = berth_driver.BerthDriver(fake_virt.FakeVirtAPI(), berth_api=daemon.client(
            timeout=60))
        flavor = objects.Flavor(id=1, name="berth.small", flavorid="1", memory_mb=128,
                                vcpus=1, root_gb=1, ephemeral_gb=0, swap=0, rxtx_factor=1.0,
                                vcpu_weight=1, disabled=False, is_public=True,
                                extra_specs={}, projects=[])
        inst = fake_instance.fake_instance_obj(ctx, uuid=INSTANCE, image_ref=IMAGE,
                                               flavor=flavor, hostname="lb-contract",
                                               host="compute-1", task_state=None)
        inst.metadata = {}
        image_meta = objects.ImageMeta.from_dict({
            "id": IMAGE, "name": "busybox", "container_format": "docker",
            "disk_format": "raw", "properties": {}})
        nw = network_model.NetworkInfo([vif])
        # Real os-vif: its linux_bridge plugin makes the bridge (privsep daemon, as root).
        drv.spawn(ctx, inst, image_meta, [], None, {}, network_info=nw)

        check("os-vif made the bridge", os.path.isdir("/sys/class/net/%s/bridge" % bridge),
              True)
        check("bridge MTU (os-vif, the network's)",
              int(open("/sys/class/net/%s/mtu" % bridge).read()), MTU)
        devices = lb_agent.LinuxBridgeManager.get_all_devices()
        check("the agent's device scan finds the tap", tap in devices, True)
        check("tap's bridge", sysfs_master(tap), bridge)
        check("tap MTU", int(open("/sys/class/net/%s/mtu" % tap).read()), MTU)
        check("tap operstate up", open("/sys/class/net/%s/operstate" % tap).read().strip()
              in ("up", "unknown"), True)

        out = daemon.client(timeout=30).exec(
            INSTANCE, ["/bin/sh", "-c", "cat /sys/class/net/eth0/address "
                       "/sys/class/net/eth0/mtu; ip -o -4 addr show dev eth0; "
                       "ip route show default"])
        lines = out["stdout"].splitlines()
        check("eth0 MAC", lines[0], MAC)
        check("eth0 MTU", int(lines[1]), MTU)
        check("eth0 address", lines[2].split()[3], IP + "/24")
        check("default route", lines[3].split()[2], "10.231.0.1")

        drv.destroy(ctx, inst, nw)
        check("tap gone after delete", os.path.exists("/sys/class/net/" + tap), False)
        check("the agent's scan no longer lists it",
              tap in lb_agent.LinuxBridgeManager.get_all_devices(), False)
        print("ALL CHECKS PASSED")
    finally:
        daemon.stop()
        # os-vif's privsep daemon (started through sudo) would otherwise linger a while.
        from vif_plug_linux_bridge import privsep as lb_privsep
        lb_privsep.vif_plug.stop()
    return 0


if __name__ == "__main__" and sys.argv[1:] == ["inside"]:
    sys.path.insert(0, HERE)
    sys.exit(inside())
