// fast_path_toggle off IFNAME PIN | on IFNAME PIN
//
// Takes berthd's bridge fast path (the "berth_fastpath" program on a bt- end's tcx ingress)
// off one port and puts the same program back, for iperf3_bench.sh's "fast path off"
// diagnostic. "off" pins the program on PIN (a file in a bpf filesystem the script
// mounted), so it outlives this process, then detaches it; "on" attaches the pinned
// program again and removes the pin. Run inside the bridge namespace (nsenter --net=...),
// where IFNAME is. Built and run by iperf3_bench.sh; not part of the build.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TCX_INGRESS 46  // BPF_TCX_INGRESS (Linux 6.6), newer than Debian 12's headers

static long Bpf(int cmd, union bpf_attr* attr) {
  return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static int Fail(const char* what) {
  fprintf(stderr, "fast_path_toggle: %s: %s\n", what, strerror(errno));
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: fast_path_toggle off|on IFNAME PIN\n");
    return 2;
  }
  unsigned ifindex = if_nametoindex(argv[2]);
  if (!ifindex) return Fail(argv[2]);
  union bpf_attr attr;
  if (strcmp(argv[1], "off") == 0) {
    uint32_t ids[8];
    memset(&attr, 0, sizeof(attr));
    attr.query.target_fd = ifindex;
    attr.query.attach_type = TCX_INGRESS;
    attr.query.prog_ids = (uintptr_t)ids;
    attr.query.prog_cnt = 8;
    if (Bpf(BPF_PROG_QUERY, &attr) != 0) return Fail("BPF_PROG_QUERY");
    if (attr.query.prog_cnt != 1) {
      fprintf(stderr, "fast_path_toggle: %u programs on %s, want 1\n", attr.query.prog_cnt,
              argv[2]);
      return 1;
    }
    memset(&attr, 0, sizeof(attr));
    attr.prog_id = ids[0];
    int fd = (int)Bpf(BPF_PROG_GET_FD_BY_ID, &attr);
    if (fd < 0) return Fail("BPF_PROG_GET_FD_BY_ID");
    memset(&attr, 0, sizeof(attr));
    attr.pathname = (uintptr_t)argv[3];
    attr.bpf_fd = fd;
    if (Bpf(BPF_OBJ_PIN, &attr) != 0) return Fail(argv[3]);
    memset(&attr, 0, sizeof(attr));
    attr.target_fd = ifindex;
    attr.attach_bpf_fd = fd;
    attr.attach_type = TCX_INGRESS;
    if (Bpf(BPF_PROG_DETACH, &attr) != 0) return Fail("BPF_PROG_DETACH");
    return 0;
  }
  if (strcmp(argv[1], "on") == 0) {
    memset(&attr, 0, sizeof(attr));
    attr.pathname = (uintptr_t)argv[3];
    int fd = (int)Bpf(BPF_OBJ_GET, &attr);
    if (fd < 0) return Fail(argv[3]);
    memset(&attr, 0, sizeof(attr));
    attr.target_fd = ifindex;
    attr.attach_bpf_fd = fd;
    attr.attach_type = TCX_INGRESS;
    if (Bpf(BPF_PROG_ATTACH, &attr) != 0) return Fail("BPF_PROG_ATTACH");
    if (unlink(argv[3]) != 0) return Fail(argv[3]);
    return 0;
  }
  fprintf(stderr, "fast_path_toggle: want off or on, got %s\n", argv[1]);
  return 2;
}
