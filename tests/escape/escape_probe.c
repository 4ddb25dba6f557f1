// The escape probe: a static program that tries, one by one, the things a tenant who is root
// inside an instance would try in order to reach the host. It only reports what happened;
// the expectations live in tests/integration/server/escape_test.cc, which runs it twice:
//
//   escape_probe inside HOSTPID DISK   in a live instance, through berthd's exec route
//   escape_probe host   HOSTPID DISK   on the host, as root: the control showing that each
//                                      attempt gets past the permission check when nothing
//                                      stops it, so a failure inside is not an accident
//
// HOSTPID is a host process made for the test (a sleeping child of the test), DISK a host
// block device (/dev/vda). Output: one line per attempt, "name<TAB>result<TAB>detail", where
// result is OK, EMPTY (a masked file read as empty) or the errno's name.
//
// Never damaging on the host: every attempt runs in a forked child that first enters a
// private mount namespace (host mode), so its mounts vanish with it; and every call uses a
// form that passes the kernel's permission check and then fails for another reason or does
// nothing. Each attempt's comment gives the pair: what happens inside, what the host does.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int host_mode;
static pid_t host_pid;
static const char* disk;
static char scratch[64];

// Result of one attempt, sent from the child to the parent.
struct result {
  int err;  // 0: the attempt succeeded; -1: read as empty (masked)
  char detail[200];
};

static int fail(struct result* r, const char* what) {
  r->err = errno;
  snprintf(r->detail, sizeof r->detail, "%s", what);
  return -1;
}

static int ok(struct result* r, const char* what) {
  r->err = 0;
  snprintf(r->detail, sizeof r->detail, "%s", what);
  return 0;
}

static void path_in(char* out, size_t n, const char* name) {
  snprintf(out, n, "%s/%s", scratch, name);
}

// open(O_WRONLY) and close, writing nothing: the permission check is done by open.
static int open_for_write(struct result* r, const char* path) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail(r, path);
  close(fd);
  return ok(r, path);
}

// Reads a file; EMPTY when it opens but has no content (a masked path is /dev/null).
static int read_file(struct result* r, const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(r, path);
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf);
  int e = errno;
  close(fd);
  if (n < 0) {
    errno = e;
    return fail(r, path);
  }
  if (n == 0) {
    r->err = -1;
    snprintf(r->detail, sizeof r->detail, "%s: 0 bytes", path);
    return -1;
  }
  snprintf(r->detail, sizeof r->detail, "%s: %zd bytes", path, n);
  r->err = 0;
  return 0;
}

// Inside: EPERM (seccomp: mount family; no CAP_SYS_ADMIN). Host: mounted (private mount ns).
static int try_mount_tmpfs(struct result* r) {
  char d[96];
  path_in(d, sizeof d, "mnt");
  if (mount("tmpfs", d, "tmpfs", 0, "size=1m") != 0) return fail(r, "mount tmpfs");
  return ok(r, "mount tmpfs");
}

static int try_mount_proc(struct result* r) {
  char d[96];
  path_in(d, sizeof d, "mnt");
  if (mount("proc", d, "proc", 0, NULL) != 0) return fail(r, "mount proc");
  return ok(r, "mount proc");
}

static int try_mount_sysfs(struct result* r) {
  char d[96];
  path_in(d, sizeof d, "mnt");
  if (mount("sysfs", d, "sysfs", 0, NULL) != 0) return fail(r, "mount sysfs");
  return ok(r, "mount sysfs");
}

static int write_text(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  close(fd);
  return n < 0 ? -1 : 0;
}

// Inside: unshare(CLONE_NEWUSER) is EPERM (seccomp). Host: a user + mount namespace of the
// child's own, root mapped to itself, then a tmpfs mounted in it.
static int try_userns_mount(struct result* r) {
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
    return fail(r, "unshare(CLONE_NEWUSER|CLONE_NEWNS)");
  char map[64];
  snprintf(map, sizeof map, "0 %u 1\n", uid);
  if (write_text("/proc/self/uid_map", map) != 0) return fail(r, "uid_map");
  if (write_text("/proc/self/setgroups", "deny") != 0) return fail(r, "setgroups");
  snprintf(map, sizeof map, "0 %u 1\n", gid);
  if (write_text("/proc/self/gid_map", map) != 0) return fail(r, "gid_map");
  char d[96];
  path_in(d, sizeof d, "mnt");
  if (mount("tmpfs", d, "tmpfs", 0, "size=1m") != 0) return fail(r, "mount tmpfs in new userns");
  return ok(r, "unshare(CLONE_NEWUSER) + mount tmpfs");
}

// Inside: the tmpfs mount fails, and pivot_root itself is EPERM (seccomp). Host: a tmpfs as
// new root, pivoted into in the child's private mount namespace.
static int try_pivot_root(struct result* r) {
  char d[96], old[128];
  path_in(d, sizeof d, "mnt");
  snprintf(old, sizeof old, "%s/old", d);
  if (mount("tmpfs", d, "tmpfs", 0, "size=1m") == 0) mkdir(old, 0700);
  if (syscall(SYS_pivot_root, d, old) != 0) return fail(r, "pivot_root");
  return ok(r, "pivot_root");
}

// Inside: EPERM (seccomp). Host: the capability check passes, then an unknown flag is
// EINVAL (ENOSYS: this kernel has no kexec). Nothing is loaded.
static int try_kexec_load(struct result* r) {
  if (syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0x8000UL) != 0)
    return fail(r, "kexec_load(bad flag)");
  return ok(r, "kexec_load");
}

// Inside: EPERM (seccomp). Host: CAP_SYS_BOOT is checked before the magic numbers, which are
// wrong on purpose: EINVAL, nothing happens.
static int try_reboot(struct result* r) {
  if (syscall(SYS_reboot, 0xdeadbeef, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART, NULL) != 0)
    return fail(r, "reboot(bad magic)");
  return ok(r, "reboot");
}

// Inside: EPERM (seccomp). Host: CAP_SYS_MODULE passes, the image is garbage: ENOEXEC or
// EINVAL (ENOSYS: kernel without module support).
static int try_init_module(struct result* r) {
  static char garbage[64] = "not an ELF module";
  if (syscall(SYS_init_module, garbage, sizeof garbage, "") != 0)
    return fail(r, "init_module(garbage)");
  return ok(r, "init_module");
}

static int try_finit_module(struct result* r) {
  int fd = memfd_create("probe-module", MFD_CLOEXEC);
  if (fd < 0) return fail(r, "memfd_create");
  if (write(fd, "not an ELF module", 17) != 17) return fail(r, "write memfd");
  if (syscall(SYS_finit_module, fd, "", 0) != 0) return fail(r, "finit_module(garbage)");
  return ok(r, "finit_module");
}

// Inside: EPERM (seccomp). Host: CAP_SYS_ADMIN passes, the file has no swap signature:
// EINVAL.
static int try_swapon(struct result* r) {
  char f[96];
  path_in(f, sizeof f, "swapfile");
  int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail(r, "create swapfile");
  static char zeros[65536];
  if (write(fd, zeros, sizeof zeros) != (ssize_t)sizeof zeros) return fail(r, "write swapfile");
  close(fd);
  int rc = swapon(f, 0);
  int e = errno;
  unlink(f);
  errno = e;
  if (rc != 0) return fail(r, "swapon(non-swap file)");
  swapoff(f);
  return ok(r, "swapon");
}

// Inside: EPERM (seccomp; CAP_SYS_TIME missing too). Host: settimeofday(NULL, NULL) passes
// the security check and changes nothing.
static int try_settimeofday(struct result* r) {
  if (syscall(SYS_settimeofday, NULL, NULL) != 0) return fail(r, "settimeofday(NULL, NULL)");
  return ok(r, "settimeofday(NULL, NULL)");
}

// Inside: EPERM (seccomp). Host: CAP_SYS_PACCT passes, the file does not exist: ENOENT.
static int try_acct(struct result* r) {
  if (acct("/nonexistent-berth-escape-probe/pacct") != 0) return fail(r, "acct(missing file)");
  return ok(r, "acct");
}

// Inside: EROFS or EACCES (/proc/sys read-only; owned by an id outside the user namespace).
// Host: opened for writing, nothing written.
static int try_write_proc_sys_kernel(struct result* r) {
  return open_for_write(r, "/proc/sys/kernel/panic");
}

// Inside and on this host: ENOENT when the kernel has no sysrq; else inside EROFS.
static int try_write_sysrq_trigger(struct result* r) {
  return open_for_write(r, "/proc/sysrq-trigger");
}

// Inside: EROFS or EACCES (sysfs read-only; owned by an id outside the user namespace).
// Host: opened for writing, nothing written.
static int try_write_sys_kernel(struct result* r) {
  return open_for_write(r, "/sys/kernel/rcu_expedited");
}

// Inside: masked (EMPTY) or ENOENT. Host here: ENOENT (this kernel has no /proc/kcore).
static int try_read_proc_kcore(struct result* r) { return read_file(r, "/proc/kcore"); }

// Inside: masked (EMPTY); add_key is EPERM there anyway. Host: a key is added to the
// child's process keyring (gone when it exits), so /proc/keys shows at least that line.
static int try_read_proc_keys(struct result* r) {
  syscall(SYS_add_key, "user", "berth-escape-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING);
  return read_file(r, "/proc/keys");
}

// Inside: masked (an empty directory). Host: lists the firmware tables.
static int try_read_sys_firmware(struct result* r) {
  DIR* d = opendir("/sys/firmware");
  if (!d) return fail(r, "/sys/firmware");
  int n = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) ++n;
  }
  closedir(d);
  snprintf(r->detail, sizeof r->detail, "/sys/firmware: %d entries", n);
  r->err = n ? 0 : -1;
  return n ? 0 : -1;
}

// Inside: EPERM (mknod of a device needs CAP_MKNOD in the initial user namespace). Host: a
// node for DISK is made in the scratch dir, opened read-only, closed and removed.
static int try_mknod_block(struct result* r) {
  struct stat st;
  if (stat(disk, &st) != 0 && !host_mode) st.st_rdev = makedev(254, 0);
  char node[96];
  path_in(node, sizeof node, "blk");
  if (mknod(node, S_IFBLK | 0600, st.st_rdev) != 0) return fail(r, "mknod block device");
  int fd = open(node, O_RDONLY | O_CLOEXEC);
  int e = errno;
  unlink(node);
  if (fd < 0) {
    errno = e;
    return fail(r, "open the new block node");
  }
  close(fd);
  return ok(r, "mknod + open block device");
}

// Inside: ENOENT (only the standard nodes in /dev). Host: opened read-only and closed.
static int try_open_host_disk(struct result* r) {
  int fd = open(disk, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(r, disk);
  close(fd);
  return ok(r, disk);
}

// Inside: EPERM (seccomp). Host: a one-entry array map is created and closed.
static int try_bpf(struct result* r) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  int fd = (int)syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
  if (fd < 0) return fail(r, "bpf(BPF_MAP_CREATE)");
  close(fd);
  return ok(r, "bpf(BPF_MAP_CREATE)");
}

// Inside: EPERM (seccomp). Host: a software clock counter on itself, closed at once.
static int try_perf_event_open(struct result* r) {
  struct perf_event_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.disabled = 1;
  int fd = (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
  if (fd < 0) return fail(r, "perf_event_open");
  close(fd);
  return ok(r, "perf_event_open");
}

// Inside: EPERM (seccomp: the keyring is not namespaced). Host: a key in the child's
// process keyring, which goes away with the child.
static int try_add_key(struct result* r) {
  if (syscall(SYS_add_key, "user", "berth-escape-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING) < 0)
    return fail(r, "add_key");
  return ok(r, "add_key");
}

static int try_keyctl(struct result* r) {
  if (syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1) < 0)
    return fail(r, "keyctl(KEYCTL_GET_KEYRING_ID)");
  return ok(r, "keyctl(KEYCTL_GET_KEYRING_ID)");
}

// Inside: EPERM (seccomp). Host: a userfaultfd made and closed.
static int try_userfaultfd(struct result* r) {
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
  if (fd < 0) return fail(r, "userfaultfd");
  close(fd);
  return ok(r, "userfaultfd");
}

// The "shocker" escape. Inside: EPERM (seccomp; CAP_DAC_READ_SEARCH missing too). Host: the
// handle of "/" opened read-only.
static int try_open_by_handle_at(struct result* r) {
  struct {
    struct file_handle fh;
    unsigned char bytes[128];
  } h;
  memset(&h, 0, sizeof h);
  h.fh.handle_bytes = sizeof h.bytes;
  int mount_id = 0;
  if (syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &h.fh, &mount_id, 0) != 0) {
    // Overlay without nfs_export gives no handles: forge an ext4-style one (inode 2), as
    // shocker.c does.
    h.fh.handle_bytes = 8;
    h.fh.handle_type = 1;
    h.bytes[0] = 2;
  }
  int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int fd = (int)syscall(SYS_open_by_handle_at, root, &h.fh, O_RDONLY | O_CLOEXEC);
  int e = errno;
  close(root);
  if (fd < 0) {
    errno = e;
    return fail(r, "open_by_handle_at");
  }
  close(fd);
  return ok(r, "open_by_handle_at");
}

// The CVE-2022-0492 path needs a cgroup v1 hierarchy it can write release_agent in.
// Inside: mounting one is EPERM (seccomp). Host: the pids hierarchy mounted again in the
// child's private mount namespace (the same superblock; gone with the namespace).
static int try_mount_cgroup_v1(struct result* r) {
  char d[96];
  path_in(d, sizeof d, "mnt");
  if (mount("cgroup", d, "cgroup", 0, "pids") != 0) return fail(r, "mount cgroup v1 (pids)");
  return ok(r, "mount cgroup v1 (pids)");
}

// Inside: ENOENT (the cgroup namespace's root is the instance's own group; release_agent
// lives only at a hierarchy's root) or EROFS. Host: opened for writing, nothing written.
static int try_release_agent(struct result* r) {
  return open_for_write(r, "/sys/fs/cgroup/pids/release_agent");
}

// Inside: EROFS/EACCES (read-only cgroup view). Host: opened for writing, nothing written.
static int try_notify_on_release(struct result* r) {
  return open_for_write(r, "/sys/fs/cgroup/pids/notify_on_release");
}

// Moving a process into another group escapes limits. Inside: the view's cgroup.procs is
// the instance's own group and read-only: EROFS/EACCES; its parent is not mounted at all.
// Host: the root group's cgroup.procs opened for writing, nothing written.
static int try_cgroup_procs(struct result* r) {
  return open_for_write(r, "/sys/fs/cgroup/pids/cgroup.procs");
}

// Inside: ESRCH (a pid namespace of its own: host pids do not exist there). Host: signal 0
// (a liveness check) to the test's sleeping child.
static int try_kill_host(struct result* r) {
  if (kill(host_pid, 0) != 0) return fail(r, "kill(hostpid, 0)");
  return ok(r, "kill(hostpid, 0)");
}

// Inside: ESRCH. Host: attached to the test's sleeping child, then detached.
static int try_ptrace_host(struct result* r) {
  if (ptrace(PTRACE_ATTACH, host_pid, NULL, NULL) != 0) return fail(r, "ptrace(PTRACE_ATTACH)");
  waitpid(host_pid, NULL, __WALL);
  ptrace(PTRACE_DETACH, host_pid, NULL, NULL);
  return ok(r, "ptrace(PTRACE_ATTACH) + detach");
}

// Inside: ENOENT. Host: the process is there.
static int try_proc_host_pid(struct result* r) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/status", (int)host_pid);
  return read_file(r, p);
}

struct attempt {
  const char* name;
  int (*fn)(struct result*);
};

static const struct attempt kAttempts[] = {
    {"mount_tmpfs", try_mount_tmpfs},
    {"mount_proc", try_mount_proc},
    {"mount_sysfs", try_mount_sysfs},
    {"unshare_userns_then_mount", try_userns_mount},
    {"pivot_root", try_pivot_root},
    {"kexec_load", try_kexec_load},
    {"reboot", try_reboot},
    {"init_module", try_init_module},
    {"finit_module", try_finit_module},
    {"swapon", try_swapon},
    {"settimeofday", try_settimeofday},
    {"acct", try_acct},
    {"write_proc_sys_kernel", try_write_proc_sys_kernel},
    {"write_proc_sysrq_trigger", try_write_sysrq_trigger},
    {"write_sys_kernel", try_write_sys_kernel},
    {"read_proc_kcore", try_read_proc_kcore},
    {"read_proc_keys", try_read_proc_keys},
    {"read_sys_firmware", try_read_sys_firmware},
    {"mknod_block_device", try_mknod_block},
    {"open_host_disk", try_open_host_disk},
    {"bpf", try_bpf},
    {"perf_event_open", try_perf_event_open},
    {"add_key", try_add_key},
    {"keyctl", try_keyctl},
    {"userfaultfd", try_userfaultfd},
    {"open_by_handle_at", try_open_by_handle_at},
    {"mount_cgroup_v1", try_mount_cgroup_v1},
    {"cgroup_release_agent", try_release_agent},
    {"cgroup_notify_on_release", try_notify_on_release},
    {"cgroup_procs_write", try_cgroup_procs},
    {"kill_host_process", try_kill_host},
    {"ptrace_host_process", try_ptrace_host},
    {"proc_shows_host_process", try_proc_host_pid},
};

static const char* result_name(int err) {
  if (err == 0) return "OK";
  if (err == -1) return "EMPTY";
  const char* n = strerrorname_np(err);
  return n ? n : "E?";
}

static void run(const struct attempt* a) {
  int p[2];
  if (pipe(p) != 0) {
    printf("%s\tPROBE_ERROR\tpipe: %s\n", a->name, strerror(errno));
    return;
  }
  char mnt[96];
  path_in(mnt, sizeof mnt, "mnt");
  mkdir(mnt, 0700);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    struct result r = {0, ""};
    if (host_mode) {
      // Everything the attempt mounts lives and dies in this namespace.
      if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        r.err = errno;
        snprintf(r.detail, sizeof r.detail, "PROBE: private mount namespace failed");
        (void)!write(p[1], &r, sizeof r);
        _exit(2);
      }
    }
    a->fn(&r);
    (void)!write(p[1], &r, sizeof r);
    _exit(0);
  }
  close(p[1]);
  struct result r;
  ssize_t n = read(p[0], &r, sizeof r);
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  rmdir(mnt);
  if (n != (ssize_t)sizeof r) {
    printf("%s\tPROBE_ERROR\tchild status %d\n", a->name, status);
    return;
  }
  printf("%s\t%s\t%s\n", a->name, result_name(r.err), r.detail);
  fflush(stdout);
}

int main(int argc, char** argv) {
  if (argc != 4 || (strcmp(argv[1], "inside") != 0 && strcmp(argv[1], "host") != 0)) {
    fprintf(stderr, "usage: %s inside|host HOSTPID DISK\n", argv[0]);
    return 2;
  }
  host_mode = strcmp(argv[1], "host") == 0;
  host_pid = (pid_t)atoi(argv[2]);
  disk = argv[3];
  setvbuf(stdout, NULL, _IOLBF, 0);
  snprintf(scratch, sizeof scratch, "/tmp/escape-probe.XXXXXX");
  if (!mkdtemp(scratch)) {
    fprintf(stderr, "mkdtemp %s: %s\n", scratch, strerror(errno));
    return 1;
  }
  for (size_t i = 0; i < sizeof kAttempts / sizeof kAttempts[0]; ++i) run(&kAttempts[i]);
  rmdir(scratch);
  return 0;
}
