// The spec `berth-runtime spec` writes, modelled on `crun spec` (crun 1.8): a shell in a
// "rootfs" directory beside config.json, every namespace but user and cgroup, the standard
// pseudo-filesystems, and the masked and read-only /proc and /sys paths.
#include "runtime/spec/parser.h"

namespace berth::spec {

Spec DefaultSpec() {
  Spec spec;
  spec.oci_version = "1.0.0";

  Process& proc = spec.process;
  proc.terminal = true;
  proc.args = {"sh"};
  proc.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"};
  proc.cwd = "/";
  const std::vector<std::string> caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  // crun also lists these as ambient while leaving inheritable empty; the kernel refuses to
  // raise an ambient capability that is not inheritable, so here they are inheritable and
  // not ambient.
  proc.capabilities = Capabilities{
      .bounding = caps, .effective = caps, .inheritable = caps, .permitted = caps, .ambient = {}};
  proc.rlimits = {Rlimit{.type = "RLIMIT_NOFILE", .hard = 1024, .soft = 1024}};
  proc.no_new_privileges = true;

  spec.root = Root{.path = "rootfs", .readonly = true};
  spec.hostname = "berth";

  spec.mounts = {
      {"/proc", "proc", "proc", {}},
      {"/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}},
      {"/dev/pts",
       "devpts",
       "devpts",
       {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
      {"/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
      {"/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}},
      {"/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}},
      {"/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}},
  };

  Linux& lx = spec.linux;
  lx.namespaces = {
      {NamespaceType::kPid, ""}, {NamespaceType::kNetwork, ""}, {NamespaceType::kIpc, ""},
      {NamespaceType::kUts, ""}, {NamespaceType::kMount, ""},
  };
  // Deny every device; the runtime adds the standard allow-list (null, zero, tty, ...).
  Resources resources;
  DeviceRule deny_all;
  deny_all.allow = false;
  deny_all.type = "a";
  deny_all.access = "rwm";
  resources.devices = {deny_all};
  lx.resources = std::move(resources);
  lx.masked_paths = {"/proc/acpi",        "/proc/asound",        "/proc/kcore",
                     "/proc/keys",        "/proc/latency_stats", "/proc/timer_list",
                     "/proc/timer_stats", "/proc/sched_debug",   "/sys/firmware",
                     "/proc/scsi"};
  lx.readonly_paths = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
  return spec;
}

}  // namespace berth::spec
