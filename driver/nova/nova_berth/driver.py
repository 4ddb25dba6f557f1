"""BerthDriver: Nova's compute driver for Berth containers.

Thin on purpose: every method turns Nova objects into one or two berthd calls
(nova_berth.client) and berthd's answers or errors into what Nova expects. The container
lifecycle, the flavor limits, the image handling all live in berthd.

Load it with `compute_driver = berth.BerthDriver` (through the nova/virt/berth shim that
install.sh links) and configure the [berth] section (nova_berth.conf).
"""

import datetime
import os
import shlex

import eventlet
import os_resource_classes as orc
import os_vif
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_serialization import jsonutils
from oslo_utils import timeutils
from oslo_utils import versionutils

from nova.compute import power_state
from nova.compute import task_states
import nova.conf
from nova import exception
from nova.image import glance
from nova.network import model as network_model
from nova.network import os_vif_util
from nova.objects import diagnostics as diagnostics_obj
from nova.objects import fields
from nova.virt import driver
from nova.virt import hardware

from nova_berth import client as berth_client
from nova_berth import conf as berth_conf
from nova_berth import exception as berth_exc
from nova_berth import flavor as berth_flavor

LOG = logging.getLogger(__name__)
CONF = nova.conf.CONF
berth_conf.register_opts(CONF)

HYPERVISOR_TYPE = "berth"
# As Nova's libvirt driver bounds it (nova/virt/libvirt/driver.py MAX_CONSOLE_BYTES).
MAX_CONSOLE_BYTES = 100 * 1024

_STATE_NAMES = {
    power_state.NOSTATE: "NOSTATE", power_state.RUNNING: "RUNNING",
    power_state.PAUSED: "PAUSED", power_state.SHUTDOWN: "SHUTDOWN",
    power_state.CRASHED: "CRASHED", power_state.SUSPENDED: "SUSPENDED",
}


def _uuid(instance):
    # Nova passes objects.Instance, and in a few old paths (and its tests) DB rows; both
    # support item access.
    return instance["uuid"]


def _attr(obj, name, default=None):
    """An optional field of a Nova object: None when unset, instead of lazy-loading."""
    if hasattr(obj, "obj_attr_is_set"):
        try:
            if not obj.obj_attr_is_set(name):
                return default
        except AttributeError:
            return default
    try:
        value = obj[name] if isinstance(obj, dict) else getattr(obj, name)
    except (AttributeError, KeyError, NotImplementedError):
        return default
    return default if value is None else value


def _power_state(record):
    code = record.get("power_state", power_state.NOSTATE)
    return code if code in berth_client.POWER_STATES else power_state.NOSTATE


def _os_vif_reason(err):
    """os-vif's PlugException keeps the plugin's error in kwargs["err"]; its own message
    is left unformatted when that error's str() fails (e.g. oslo.config's
    RequiredOptError for a missing [oslo_concurrency] lock_path)."""
    inner = getattr(err, "kwargs", {}).get("err", err)
    try:
        text = str(inner)
    except Exception:  # noqa: BLE001 - the reason is the point here
        text = repr(getattr(inner, "args", ()))
    return "%s: %s" % (type(inner).__name__, text)


class BerthDriver(driver.ComputeDriver):
    """Nova instances as Berth containers, through berthd's REST API."""

    capabilities = dict(
        driver.ComputeDriver.capabilities,
        # berthd keeps its own layer cache keyed by Glance id + hash; Nova's image cache
        # manager has nothing to manage.
        has_imagecache=False,
        # The disk lives in this host's layer store: there is nothing to evacuate from.
        supports_evacuate=False,
        # Resize and cold migration happen on this host only (a live cgroup change).
        supports_migrate_to_same_host=True,
        # Networking (Neutron VIF plugging) is not implemented yet.
        supports_attach_interface=True,
        supports_device_tagging=False,
        supports_tagged_attach_interface=False,
        supports_tagged_attach_volume=False,
        supports_multiattach=False,
        supports_trusted_certs=False,
        supports_pcpus=False,
        # Glance images for Berth are container images: container_format docker (or a
        # rootfs tarball) with disk_format raw. VM disk formats are refused by berthd.
        supports_image_type_raw=True,
        supports_image_type_qcow2=False,
        supports_image_type_vmdk=False,
        supports_image_type_vdi=False,
        supports_image_type_vhd=False,
        supports_image_type_vhdx=False,
        supports_image_type_iso=False,
        supports_image_type_ploop=False,
        supports_image_type_aki=False,
        supports_image_type_ami=False,
        supports_image_type_ari=False,
    )

    def __init__(self, virtapi, read_only=False, berth_api=None):
        super().__init__(virtapi)
        self._nodename = None
        self.berth = berth_api or berth_client.BerthClient(
            api_url=CONF.berth.api_url,
            token=CONF.berth.token,
            token_file=CONF.berth.token_file,
            connect_timeout=CONF.berth.connect_timeout,
            timeout=CONF.berth.api_timeout,
            spawn_timeout=CONF.berth.spawn_timeout,
            snapshot_timeout=CONF.berth.snapshot_timeout)

    # -- errors -----------------------------------------------------------------------

    def _translate(self, err, instance=None, action=None):
        """A Nova exception for a berthd error."""
        uuid = _uuid(instance) if instance is not None else None
        if isinstance(err, berth_exc.BerthNotFound) and uuid:
            return exception.InstanceNotFound(instance_id=uuid)
        if isinstance(err, berth_exc.BerthConflict) and uuid:
            state = "unknown"
            try:
                state = _STATE_NAMES.get(_power_state(self.berth.get_instance(uuid)),
                                         "unknown")
            except berth_exc.BerthError:
                pass
            return exception.InstanceInvalidState(
                attr="power_state", instance_uuid=uuid, state=state,
                method=action or "this action")
        if isinstance(err, berth_exc.BerthBadRequest):
            return exception.InvalidInput(reason=err.message)
        if isinstance(err, berth_exc.BerthConnectionError):
            return exception.HypervisorUnavailable(host=CONF.host)
        if isinstance(err, berth_exc.BerthNotSupported):
            return NotImplementedError(str(err))
        return exception.NovaException(message=str(err))

    def _call(self, instance, action, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except berth_exc.BerthError as e:
            raise self._translate(e, instance, action) from e

    def _to_state(self, instance, action, fn, targets):
        """Runs a power action; a 409 is fine when the instance already is in one of
        `targets` (Nova may repeat an action, e.g. after a restart), an error otherwise."""
        uuid = _uuid(instance)
        try:
            return fn(uuid)
        except berth_exc.BerthConflict as e:
            try:
                current = _power_state(self.berth.get_instance(uuid))
            except berth_exc.BerthError as e2:
                raise self._translate(e2, instance, action) from e
            if current in targets:
                LOG.debug("%s: instance already %s", action, _STATE_NAMES[current],
                          instance=instance)
                return None
            raise self._translate(e, instance, action) from e
        except berth_exc.BerthError as e:
            raise self._translate(e, instance, action) from e

    # -- host -------------------------------------------------------------------------

    def init_host(self, host):
        """Checks that berthd answers with the configured token, and learns its routes."""
        try:
            info = self.berth.host()
            self.berth.routes(refresh=True)
        except berth_exc.BerthUnauthorized as e:
            raise exception.NovaException(
                message="berthd at %s refused the driver's token ([berth] token / "
                        "token_file): %s" % (CONF.berth.api_url, e.message)) from e
        except berth_exc.BerthError as e:
            LOG.error("berthd at %s is not usable: %s", CONF.berth.api_url, e)
            raise exception.HypervisorUnavailable(host=host) from e
        if self._nodename is None:
            self._nodename = info.get("hostname") or CONF.host
        LOG.info("berthd %s at %s: %s, cgroup %s, storage %s, %d instances",
                 info.get("version"), CONF.berth.api_url, info.get("kernel"),
                 info.get("cgroup_version"), info.get("storage_driver"),
                 info.get("instances", 0))

    def cleanup_host(self, host):
        pass

    def _node(self):
        # The node name must never change under Nova (it keys the compute node record):
        # the first answer is kept.
        if self._nodename is None:
            try:
                self._nodename = self.berth.host().get("hostname") or CONF.host
            except berth_exc.BerthError as e:
                LOG.warning("berthd unavailable (%s); using host %s as node name", e,
                            CONF.host)
                return CONF.host
        return self._nodename

    def get_available_nodes(self, refresh=False):
        return [self._node()]

    def node_is_available(self, nodename):
        return nodename in self.get_available_nodes()

    def get_host_ip_addr(self):
        return CONF.my_ip

    def get_host_uptime(self):
        # berthd runs on this host (one berthd next to one nova-compute).
        out, _err = processutils.execute("env", "LANG=C", "uptime")
        return out

    def get_host_cpu_stats(self):
        """Host cpu time from /proc/stat (ns), as the libvirt driver reports it."""
        with open("/proc/stat") as f:
            fields_ = f.readline().split()
        tick_ns = 10 ** 9 // _clock_ticks()
        user, nice, system, idle, iowait = (int(x) for x in fields_[1:6])
        frequency = 0
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("cpu MHz"):
                        frequency = int(float(line.split(":")[1]))
                        break
        except (OSError, ValueError):
            pass
        return {"kernel": system * tick_ns, "idle": idle * tick_ns,
                "user": (user + nice) * tick_ns, "iowait": iowait * tick_ns,
                "frequency": frequency}

    def _host(self):
        try:
            return self.berth.host()
        except berth_exc.BerthError as e:
            raise self._translate(e) from e

    @staticmethod
    def _arch(host):
        try:
            return fields.Architecture.canonicalize(host.get("architecture") or "x86_64")
        except exception.InvalidArchitectureName:
            return fields.Architecture.X86_64

    @staticmethod
    def _version_int(version):
        core = (version or "0").split("-")[0].split("+")[0]
        try:
            return versionutils.convert_version_to_int(core)
        except Exception:
            return 0

    def get_available_resource(self, nodename):
        host = self._host()
        arch = self._arch(host)
        return {
            "vcpus": host["vcpus"]["total"],
            "memory_mb": host["memory_mb"]["total"],
            "local_gb": host["disk_gb"]["total"],
            "vcpus_used": host["vcpus"]["used"],
            "memory_mb_used": host["memory_mb"]["used"],
            "local_gb_used": host["disk_gb"]["used"],
            "hypervisor_type": HYPERVISOR_TYPE,
            "hypervisor_version": self._version_int(host.get("version")),
            "hypervisor_hostname": nodename,
            "cpu_info": jsonutils.dumps({"arch": arch}),
            "disk_available_least": host.get("disk_available_gb",
                                             host["disk_gb"]["free"]),
            "supported_instances": self._supported_instances(arch),
            "numa_topology": None,
        }

    @staticmethod
    def _supported_instances(arch):
        # Container images run as processes ("exe"); "docker" and "lxc" are the existing
        # hypervisor types an image's img_hv_type can name for containers.
        return [(arch, fields.HVType.DOCKER, fields.VMMode.EXE),
                (arch, fields.HVType.LXC, fields.VMMode.EXE)]

    def update_provider_tree(self, provider_tree, nodename, allocations=None):
        host = self._host()
        inv = provider_tree.data(nodename).inventory
        ratios = self._get_allocation_ratios(inv)
        reserved = {
            orc.VCPU: CONF.reserved_host_cpus,
            orc.MEMORY_MB: CONF.reserved_host_memory_mb,
            orc.DISK_GB: self._get_reserved_host_disk_gb_from_config(),
        }
        totals = {
            orc.VCPU: host["vcpus"]["total"],
            orc.MEMORY_MB: host["memory_mb"]["total"],
            orc.DISK_GB: host["disk_gb"]["total"],
        }
        inventory = {}
        for rc, total in totals.items():
            if total <= 0:
                continue  # Placement refuses an inventory of 0 (e.g. a tiny state disk)
            inventory[rc] = {
                "total": total,
                "min_unit": 1,
                "max_unit": total,
                "step_size": 1,
                "allocation_ratio": ratios[rc],
                "reserved": reserved[rc],
            }
        provider_tree.update_inventory(nodename, inventory)

    # -- instances: queries -----------------------------------------------------------

    def _list(self):
        try:
            return self.berth.list_instances()
        except berth_exc.BerthError as e:
            raise self._translate(e) from e

    def list_instances(self):
        return [i["name"] for i in self._list()]

    def list_instance_uuids(self):
        return [i["uuid"] for i in self._list()]

    def get_num_instances(self):
        return len(self._list())

    def instance_exists(self, instance):
        try:
            self.berth.get_instance(_uuid(instance))
            return True
        except berth_exc.BerthNotFound:
            return False
        except berth_exc.BerthError as e:
            raise self._translate(e, instance) from e

    def get_info(self, instance, use_cache=True):
        record = self._call(instance, "get_info", self.berth.get_instance, _uuid(instance))
        return hardware.InstanceInfo(state=_power_state(record), internal_id=record["uuid"])

    def get_console_output(self, context, instance):
        out = self._call(instance, "get_console_output", self.berth.console,
                         _uuid(instance), CONF.berth.console_lines)
        data = out.encode("utf-8")
        if len(data) > MAX_CONSOLE_BYTES:
            data = data[-MAX_CONSOLE_BYTES:]
        return data.decode("utf-8", "ignore")

    def _stats(self, instance):
        """(record, stats or None when the instance is not running)."""
        uuid = _uuid(instance)
        record = self._call(instance, "diagnostics", self.berth.get_instance, uuid)
        try:
            return record, self.berth.stats(uuid)
        except berth_exc.BerthConflict:
            return record, None
        except berth_exc.BerthError as e:
            raise self._translate(e, instance, "diagnostics") from e

    @staticmethod
    def _uptime(record):
        launched = record.get("launched_at")
        if not launched or _power_state(record) == power_state.SHUTDOWN:
            return 0
        try:
            start = timeutils.parse_isotime(launched)
        except ValueError:
            return 0
        now = datetime.datetime.now(tz=start.tzinfo or datetime.timezone.utc)
        return max(0, int((now - start).total_seconds()))

    def get_diagnostics(self, instance):
        record, stats = self._stats(instance)
        diags = {"state": _STATE_NAMES[_power_state(record)],
                 "uptime": self._uptime(record)}
        if stats:
            cpu, mem = stats.get("cpu", {}), stats.get("memory", {})
            pids, io = stats.get("pids", {}), stats.get("io", {})
            diags.update({
                "cpu_time_ns": cpu.get("usage_ns", 0),
                "cpu_user_ns": cpu.get("user_ns", 0),
                "cpu_system_ns": cpu.get("system_ns", 0),
                "cpu_throttled_periods": cpu.get("throttled_periods", 0),
                "memory_usage_bytes": mem.get("usage_bytes", 0),
                "memory_max_usage_bytes": mem.get("max_usage_bytes", 0),
                "memory_limit_bytes": mem.get("limit_bytes"),
                "memory_cache_bytes": mem.get("cache_bytes", 0),
                "oom_kills": mem.get("oom_kills", 0),
                "pids_current": pids.get("current", 0),
                "pids_limit": pids.get("limit"),
                "io_read_bytes": io.get("read_bytes", 0),
                "io_write_bytes": io.get("write_bytes", 0),
            })
        return diags

    def get_instance_diagnostics(self, instance):
        record, stats = self._stats(instance)
        # `driver` is an enum of Nova's in-tree drivers, with no value for Berth: it stays
        # unset (the API shows null) rather than naming another driver.
        diags = diagnostics_obj.Diagnostics(
            state=power_state.STATE_MAP[_power_state(record)],
            hypervisor=HYPERVISOR_TYPE, hypervisor_os="linux",
            uptime=self._uptime(record), config_drive=False)
        flavor = record.get("flavor", {})
        if stats:
            cpu, mem, io = stats.get("cpu", {}), stats.get("memory", {}), stats.get("io", {})
            # cgroups account cpu time for the whole instance, not per vcpu.
            diags.add_cpu(id=0, time=cpu.get("usage_ns", 0))
            limit = mem.get("limit_bytes")
            diags.memory_details = diagnostics_obj.MemoryDiagnostics(
                maximum=(limit >> 20) if limit else flavor.get("memory_mb"),
                used=mem.get("usage_bytes", 0) >> 20)
            diags.add_disk(read_bytes=io.get("read_bytes", 0),
                           write_bytes=io.get("write_bytes", 0))
        else:
            diags.memory_details = diagnostics_obj.MemoryDiagnostics(
                maximum=flavor.get("memory_mb"), used=0)
        return diags

    # -- spawn and destroy ------------------------------------------------------------

    @staticmethod
    def _glance_info(image_meta, image_id):
        info = {"id": image_id}
        for key in ("name", "container_format", "disk_format", "checksum", "size",
                    "min_disk", "min_ram"):
            value = _attr(image_meta, key)
            if value is not None:
                info[key] = value
        # Nova's ImageMeta drops Glance's os_hash_* fields; berthd reads them from Glance
        # when it downloads the image.
        return info

    @staticmethod
    def _command(image_meta):
        props = _attr(image_meta, "properties")
        cmdline = _attr(props, "os_command_line") if props is not None else None
        return shlex.split(cmdline) if cmdline else None

    def _token(self, context):
        if not CONF.berth.pass_user_token or context is None:
            return None
        return getattr(context, "auth_token", None)

    def spawn(self, context, instance, image_meta, injected_files, admin_password,
              allocations, network_info=None, block_device_info=None, power_on=True,
              accel_info=None):
        uuid = _uuid(instance)
        image_id = _attr(image_meta, "id") or instance.image_ref
        if not image_id:
            raise exception.ImageUnacceptable(
                image_id=None,
                reason="Berth boots containers from Glance images; volume-backed "
                       "instances are not supported")
        try:
            flavor = berth_flavor.to_berth_flavor(instance.flavor)
        except berth_flavor.InvalidFlavor as e:
            raise exception.InvalidInput(reason=str(e)) from e
        metadata = {str(k): str(v) for k, v in (_attr(instance, "metadata") or {}).items()}
        nw = jsonutils.loads(network_info.json()) if network_info else []
        # As the libvirt driver's _create_guest_with_network: listen for Neutron's
        # network-vif-plugged of the ports not yet active, plug (os-vif makes the
        # bridges, berthd the veths and OVS ports — which is what makes the agent or
        # ovn-controller bind them), create the instance with its process held (libvirt
        # creates the guest paused), wait for the events, then start it.
        events = self._neutron_events(nw) if power_on and CONF.vif_plugging_timeout else []
        if injected_files:
            LOG.warning("Berth does not inject files; %d ignored", len(injected_files),
                        instance=instance)
        LOG.debug("spawning from image %s", image_id, instance=instance)
        try:
            with self.virtapi.wait_for_instance_event(
                    instance, events, deadline=CONF.vif_plugging_timeout,
                    error_callback=self._neutron_failed_callback):
                self.plug_vifs(instance, network_info or [])
                self.berth.create_instance(
                    uuid, image_id, flavor,
                    name=instance.name,
                    hostname=_attr(instance, "hostname"),
                    metadata=metadata,
                    # base64, as Nova keeps it and the metadata service serves it
                    user_data=_attr(instance, "user_data"),
                    command=self._command(image_meta),
                    network_info=nw,
                    glance=self._glance_info(image_meta, image_id),
                    token=self._token(context),
                    start=not events)
        except eventlet.timeout.Timeout:
            LOG.warning("timed out waiting for %s", events, instance=instance)
            if CONF.vif_plugging_is_fatal:
                self._remove_failed_spawn(instance)
                raise exception.VirtualInterfaceCreateException()
        except berth_exc.BerthError as e:
            if not isinstance(e, berth_exc.BerthConflict):
                self._remove_failed_spawn(instance)
            raise self._spawn_error(e, instance, image_id) from e
        except Exception:
            self._remove_failed_spawn(instance)
            raise
        if events:
            self._call(instance, "spawn", self.berth.start, uuid)
        if not power_on:
            self._call(instance, "power_off", self.berth.stop, uuid, 0)
        LOG.info("instance spawned", instance=instance)

    def _remove_failed_spawn(self, instance):
        # berthd rolls back its own failures; this covers a spawn we gave up on (timeout,
        # dropped connection) that berthd may still complete.
        try:
            self.berth.delete_instance(_uuid(instance))
            LOG.info("removed the instance of a failed spawn", instance=instance)
        except berth_exc.BerthNotFound:
            pass
        except berth_exc.BerthError as e:
            LOG.warning("could not remove the failed spawn: %s", e, instance=instance)

    @staticmethod
    def _glance_error(err, image_id):
        """The Nova exception for Glance's refusal that berthd passed on (its error kinds
        "glance_*", see docs/glance.md), or None for any other error."""
        kind = getattr(err, "kind", None) or ""
        if kind in ("glance_unauthorized", "glance_forbidden"):
            return exception.ImageNotAuthorized(image_id=image_id)
        if kind == "glance_not_found":
            return exception.ImageNotFound(image_id=image_id)
        if kind in ("glance_image_unacceptable", "glance_image_corrupt",
                    "glance_image_not_active", "glance_image_not_queued", "glance_no_data"):
            return exception.ImageUnacceptable(image_id=image_id, reason=err.message)
        return None

    def _spawn_error(self, err, instance, image_id):
        glance_err = self._glance_error(err, image_id)
        if glance_err is not None:
            return glance_err
        if isinstance(err, berth_exc.BerthConflict):
            return exception.InstanceExists(name=instance.name)
        if isinstance(err, berth_exc.BerthNotFound):
            # berthd names what it did not find: the image, or something of the host's
            # (the VIF's bridge, a cgroup controller) that must not read as a bad image.
            if err.message.startswith("image"):
                return exception.ImageNotFound(image_id=image_id)
            if err.message.startswith("attach port"):
                LOG.error("berthd could not plug a VIF: %s", err.message, instance=instance)
                return exception.VirtualInterfaceCreateException()
            return exception.NovaException(message=str(err))
        if isinstance(err, berth_exc.BerthBadRequest):
            # berthd names the field at fault; image and command problems are the image's.
            if err.message.startswith(("image", "command", "glance")):
                return exception.ImageUnacceptable(image_id=image_id, reason=err.message)
            return exception.InvalidInput(reason=err.message)
        if isinstance(err, (berth_exc.BerthInsufficientStorage, berth_exc.BerthTooLarge)):
            return exception.ComputeResourcesUnavailable(reason=err.message)
        return self._translate(err, instance, "spawn")

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        if _attr(instance, "task_state") == task_states.RESIZE_REVERTING:
            # Revert of a same-host resize: Nova destroys the "destination" copy, which is
            # the only copy here; finish_revert_migration restores the old limits on it.
            LOG.debug("resize revert: keeping the instance", instance=instance)
            return
        uuid = _uuid(instance)
        try:
            if destroy_disks:
                self.berth.delete_instance(uuid)
            else:
                # The disk is the instance in berthd: keep it, stop the container.
                self.berth.stop(uuid, 0)
        except (berth_exc.BerthNotFound, berth_exc.BerthConflict):
            pass  # already gone / already stopped
        except berth_exc.BerthError as e:
            raise self._translate(e, instance, "destroy") from e
        self.unplug_vifs(instance, network_info)

    def cleanup(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, migrate_data=None, destroy_vifs=True,
                destroy_secrets=True):
        if destroy_vifs:
            self.unplug_vifs(instance, network_info)
        if destroy_disks and _attr(instance, "task_state") != task_states.RESIZE_REVERTING:
            try:
                self.berth.delete_instance(_uuid(instance))
            except berth_exc.BerthNotFound:
                pass
            except berth_exc.BerthError as e:
                raise self._translate(e, instance, "cleanup") from e

    # -- power ------------------------------------------------------------------------

    def reboot(self, context, instance, network_info, reboot_type, block_device_info=None,
               bad_volumes_callback=None, accel_info=None):
        uuid = _uuid(instance)
        if reboot_type == "SOFT":
            try:
                self.berth.reboot(uuid, hard=False, timeout=CONF.berth.soft_reboot_timeout)
                LOG.info("soft rebooted", instance=instance)
                return
            except berth_exc.BerthConflict:
                # Not running (stopped, paused, crashed): as libvirt does, fall back to
                # a hard reboot, which starts it from any state.
                LOG.info("soft reboot refused in this state; rebooting hard",
                         instance=instance)
            except berth_exc.BerthError as e:
                raise self._translate(e, instance, "reboot") from e
        self._call(instance, "reboot", self.berth.reboot, uuid, True)
        LOG.info("hard rebooted", instance=instance)

    def power_off(self, instance, timeout=0, retry_interval=0):
        # berthd sends the image's stop signal once and kills after `timeout`; there is
        # no repeated signal, so retry_interval has no use.
        self._to_state(instance, "power_off",
                       lambda uuid: self.berth.stop(uuid, timeout or 0),
                       (power_state.SHUTDOWN,))

    def power_on(self, context, instance, network_info, block_device_info=None,
                 accel_info=None):
        uuid = _uuid(instance)
        try:
            self.berth.start(uuid)
            return
        except berth_exc.BerthConflict as e:
            current = _power_state(self._call(instance, "power_on",
                                              self.berth.get_instance, uuid))
            if current == power_state.RUNNING:
                return
            if current in (power_state.PAUSED, power_state.SUSPENDED):
                self._call(instance, "power_on", self.berth.reboot, uuid, True)
                return
            raise self._translate(e, instance, "power_on") from e
        except berth_exc.BerthError as e:
            raise self._translate(e, instance, "power_on") from e

    def resume_state_on_host_boot(self, context, instance, network_info,
                                  block_device_info=None):
        record = self._call(instance, "resume_state_on_host_boot",
                            self.berth.get_instance, _uuid(instance))
        if _power_state(record) != power_state.RUNNING:
            # After a host reboot berthd shows the instance CRASHED (its container is
            # gone); a hard reboot starts it from any state.
            self._call(instance, "resume_state_on_host_boot", self.berth.reboot,
                       _uuid(instance), True)

    def pause(self, instance):
        self._to_state(instance, "pause", self.berth.pause, (power_state.PAUSED,))

    def unpause(self, instance):
        self._to_state(instance, "unpause", self.berth.unpause, (power_state.RUNNING,))

    def suspend(self, context, instance):
        self._to_state(instance, "suspend", self.berth.suspend, (power_state.SUSPENDED,))

    def resume(self, context, instance, network_info, block_device_info=None):
        self._to_state(instance, "resume", self.berth.resume, (power_state.RUNNING,))

    def poll_rebooting_instances(self, timeout, instances):
        # berthd reboots synchronously: nothing is ever left half-rebooted to poll.
        pass

    # -- snapshot ---------------------------------------------------------------------

    def snapshot(self, context, instance, image_id, update_task_state):
        uuid = _uuid(instance)
        try:
            self.berth.get_instance(uuid)
        except berth_exc.BerthNotFound as e:
            raise exception.InstanceNotRunning(instance_id=uuid) from e
        except berth_exc.BerthError as e:
            raise self._translate(e, instance, "snapshot") from e
        if not self.berth.supports_snapshot():
            raise NotImplementedError(
                "berthd at %s has no snapshot call (POST /v1/instances/{uuid}/snapshot)"
                % CONF.berth.api_url)
        snapshot_meta = glance.API().get(context, image_id)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        try:
            # berthd commits the disk as a layer on the instance's image and uploads it
            # as a docker-archive into the queued Glance image Nova made.
            self.berth.snapshot(uuid, image_id, name=snapshot_meta.get("name"),
                                token=self._token(context), container_format="docker",
                                disk_format="raw")
        except berth_exc.BerthError as e:
            glance_err = self._glance_error(e, image_id)
            if glance_err is not None:
                raise glance_err from e
            if isinstance(e, berth_exc.BerthNotFound):
                raise exception.InstanceNotFound(instance_id=uuid) from e
            raise self._translate(e, instance, "snapshot") from e
        LOG.info("snapshot uploaded to image %s", image_id, instance=instance)

    # -- resize (same host, live) -----------------------------------------------------

    def _is_this_host(self, dest):
        return (dest in (CONF.my_ip, CONF.host, "127.0.0.1", "localhost") or
                dest == self._node())

    def migrate_disk_and_power_off(self, context, instance, dest, flavor, network_info,
                                   block_device_info=None, timeout=0, retry_interval=0):
        if not self._is_this_host(dest):
            raise exception.InstanceFaultRollback(exception.ResizeError(
                reason="Berth resizes and migrates on the same host only (destination "
                       "%s is not this host); set allow_resize_to_same_host" % dest))
        # A live cgroup change: the instance keeps running, with the new limits from
        # now. A refusal (memory below what it uses) rolls the resize back cleanly.
        try:
            new = berth_flavor.to_berth_flavor(flavor)
        except berth_flavor.InvalidFlavor as e:
            raise exception.InstanceFaultRollback(exception.ResizeError(reason=str(e)))
        try:
            self.berth.resize(_uuid(instance), new)
        except berth_exc.BerthNotFound as e:
            raise exception.InstanceNotFound(instance_id=_uuid(instance)) from e
        except (berth_exc.BerthConflict, berth_exc.BerthBadRequest) as e:
            raise exception.InstanceFaultRollback(
                exception.ResizeError(reason=e.message)) from e
        except berth_exc.BerthError as e:
            raise self._translate(e, instance, "resize") from e
        return ""

    def _ensure_power(self, context, instance, network_info, power_on):
        if power_on:
            self.power_on(context, instance, network_info)

    def finish_migration(self, context, migration, instance, disk_info, network_info,
                         image_meta, resize_instance, allocations, block_device_info=None,
                         power_on=True):
        # The limits were changed in migrate_disk_and_power_off; apply them again in
        # case the instance.flavor Nova finished with differs.
        self._call(instance, "finish_migration", self.berth.resize, _uuid(instance),
                   berth_flavor.to_berth_flavor(instance.flavor))
        self._ensure_power(context, instance, network_info, power_on)

    def confirm_migration(self, context, migration, instance, network_info):
        # Nothing to remove: there is no second copy of the instance.
        pass

    def finish_revert_migration(self, context, instance, network_info, migration,
                                block_device_info=None, power_on=True):
        # Nova has put the old flavor back on the instance.
        self._call(instance, "finish_revert_migration", self.berth.resize,
                   _uuid(instance), berth_flavor.to_berth_flavor(instance.flavor))
        self._ensure_power(context, instance, network_info, power_on)

    # -- rebuild ----------------------------------------------------------------------

    def rebuild(self, context, instance, image_meta, injected_files, admin_password,
                allocations, bdms, detach_block_devices, attach_block_devices,
                network_info=None, evacuate=False, block_device_info=None,
                preserve_ephemeral=False, accel_uuids=None, reimage_boot_volume=False):
        """berthd's rebuild action: a new root from the image, the same instance (uuid,
        network, addresses, MAC); the old disk is removed once the new one is ready.
        Evacuation (the instance lives on another host) and boot-volume reimaging fall
        back to Nova's destroy + spawn (NotImplementedError)."""
        if evacuate or reimage_boot_volume:
            raise NotImplementedError("berthd rebuilds its own instances only")
        if preserve_ephemeral:
            LOG.warning("Berth instances have no ephemeral disk; preserve_ephemeral "
                        "ignored", instance=instance)
        image_id = _attr(image_meta, "id") or instance.image_ref
        instance.task_state = task_states.REBUILD_SPAWNING
        instance.save(expected_task_state=[task_states.REBUILDING])
        try:
            self.berth.rebuild(_uuid(instance), image_id,
                               command=self._command(image_meta) or [],
                               glance=self._glance_info(image_meta, image_id),
                               token=self._token(context))
        except berth_exc.BerthError as e:
            raise self._rebuild_error(e, instance, image_id) from e
        LOG.info("rebuilt from image %s", image_id, instance=instance)

    def _rebuild_error(self, err, instance, image_id):
        # berthd answers 404 for the image as well as for the instance: an unknown image
        # must not become InstanceNotFound, which Nova takes for "deleted meanwhile" and
        # leaves the server in REBUILD without a word.
        glance_err = self._glance_error(err, image_id)
        if glance_err is not None:
            return glance_err
        if isinstance(err, berth_exc.BerthNotFound) and err.message.startswith("image"):
            return exception.ImageNotFound(image_id=image_id)
        if isinstance(err, berth_exc.BerthBadRequest) and \
                err.message.startswith(("image", "command", "glance")):
            return exception.ImageUnacceptable(image_id=image_id, reason=err.message)
        return self._translate(err, instance, "rebuild")

    # -- networking -------------------------------------------------------------------
    #
    # Who does what: os-vif's plugins make the switch side they own — linux_bridge's
    # plug ensures the Linux bridge (brq...) when Nova says it should be created, ovs's
    # plug ensures br-int (and the hybrid qbr when the VIF asks for one) — exactly as for
    # a libvirt guest. berthd makes the rest: the veth pair, the host end on the bridge
    # or as the br-int port with iface-id/iface-status/attached-mac/vm-uuid (os-vif's
    # ovs plugin no longer creates the port itself; libvirt does, and here berthd is the
    # hypervisor), the instance end's MAC, addresses, routes and MTU.

    @staticmethod
    def _neutron_events(network_info):
        return [("network-vif-plugged", vif["id"]) for vif in network_info
                if vif.get("active", True) is False and
                vif.get("vnic_type") != network_model.VNIC_TYPE_REMOTE_MANAGED]

    @staticmethod
    def _neutron_failed_callback(event_name, instance):
        LOG.error("Neutron reported failure on event %s", event_name, instance=instance)
        if CONF.vif_plugging_is_fatal:
            raise exception.VirtualInterfaceCreateException()

    def _os_vif_ready(self):
        if not getattr(self, "_os_vif_initialized", False):
            os_vif.initialize()
            self._os_vif_initialized = True

    def _plug_os_vif(self, instance, vif):
        self._os_vif_ready()  # also registers the objects the conversion makes
        vif_obj = os_vif_util.nova_to_osvif_vif(vif)
        if vif_obj is None:
            return  # no os-vif plugin for it: berthd does all of it
        try:
            os_vif.plug(vif_obj, os_vif_util.nova_to_osvif_instance(instance))
        except Exception as e:
            raise exception.InternalError(
                "os-vif could not plug VIF %s: %s" % (vif["id"], _os_vif_reason(e))) from e

    def _unplug_os_vif(self, instance, vif):
        self._os_vif_ready()  # also registers the objects the conversion makes
        vif_obj = os_vif_util.nova_to_osvif_vif(vif)
        if vif_obj is None:
            return
        try:
            os_vif.unplug(vif_obj, os_vif_util.nova_to_osvif_instance(instance))
        except Exception as e:
            LOG.warning("os-vif could not unplug VIF %s: %s", vif["id"], e,
                        instance=instance)

    def plug_vifs(self, instance, network_info):
        """Ensures the bridges the VIFs join (os-vif). berthd attaches the instance
        itself at spawn and re-creates missing veths/ports at its start-up."""
        for vif in network_info or []:
            self._plug_os_vif(instance, vif)

    def unplug_vifs(self, instance, network_info):
        """os-vif's unplug (removes a hybrid qbr bridge, if any); berthd removed the
        veths and OVS ports with the instance."""
        for vif in network_info or []:
            self._unplug_os_vif(instance, vif)

    def attach_interface(self, context, instance, image_meta, vif):
        uuid = _uuid(instance)
        self._plug_os_vif(instance, vif)
        try:
            self.berth.attach_interface(uuid, jsonutils.loads(jsonutils.dumps(vif)))
        except berth_exc.BerthError as e:
            LOG.error("attaching interface %s failed: %s", vif["id"], e, instance=instance)
            self._unplug_os_vif(instance, vif)
            if isinstance(e, berth_exc.BerthNotFound):
                raise exception.InstanceNotFound(instance_id=uuid) from e
            raise exception.InterfaceAttachFailed(instance_uuid=uuid) from e

    def detach_interface(self, context, instance, vif):
        uuid = _uuid(instance)
        try:
            self.berth.detach_interface(uuid, vif["id"])
        except berth_exc.BerthNotFound:
            # Gone already (a retried detach, or an instance that never had it).
            LOG.info("interface %s was not attached", vif["id"], instance=instance)
        except berth_exc.BerthError as e:
            LOG.error("detaching interface %s failed: %s", vif["id"], e, instance=instance)
            raise exception.InterfaceDetachFailed(instance_uuid=uuid) from e
        self._unplug_os_vif(instance, vif)


def _clock_ticks():
    return os.sysconf(os.sysconf_names["SC_CLK_TCK"])
