// frame_cost IFNAME SRC_MAC DST_MAC SRC_IP DST_IP FRAMES [COLD_BYTES]
//
// Sends FRAMES small UDP frames (to port 9, nobody listens) out of IFNAME through an
// AF_PACKET socket and prints the CPU time this thread spent per frame, in ns. A veth
// hands each frame to its peer's receive path in the sender's own softirq context, so
// the figure covers the whole path: veth, bridge, netfilter hooks, the other veth, the
// receiving IP stack. With COLD_BYTES, each frame is sent alone after COLD_BYTES of memory
// are copied (twice), as a TCP stream's data copies do: the path's code and data are then
// cold in the caches, as they are under a real load.
//
// Built and run by iperf3_bench.sh; not part of the build.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int ParseMac(const char* text, unsigned char* mac) {
  return sscanf(text, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3],
                &mac[4], &mac[5]) == 6;
}

static unsigned short Checksum(const void* data, int len) {
  unsigned long sum = 0;
  const unsigned short* word = data;
  for (; len > 1; len -= 2) sum += *word++;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (unsigned short)~sum;
}

static double ThreadCpuNs(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: %s IFNAME SRC_MAC DST_MAC SRC_IP DST_IP FRAMES [COLD_BYTES]\n",
            argv[0]);
    return 2;
  }
  long frames = atol(argv[6]);
  long cold = argc > 7 ? atol(argv[7]) : 0;
  unsigned ifindex = if_nametoindex(argv[1]);
  if (!ifindex) {
    perror(argv[1]);
    return 1;
  }
  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) {
    perror("socket(AF_PACKET)");
    return 1;
  }
  int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);

  unsigned char frame[14 + 20 + 8 + 64] = {0};
  struct ether_header* eth = (struct ether_header*)frame;
  if (!ParseMac(argv[2], eth->ether_shost) || !ParseMac(argv[3], eth->ether_dhost)) {
    fprintf(stderr, "bad MAC address\n");
    return 2;
  }
  eth->ether_type = htons(ETH_P_IP);
  struct iphdr* ip = (struct iphdr*)(frame + 14);
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons(sizeof frame - 14);
  if (inet_pton(AF_INET, argv[4], &ip->saddr) != 1 || inet_pton(AF_INET, argv[5], &ip->daddr) != 1) {
    fprintf(stderr, "bad IPv4 address\n");
    return 2;
  }
  ip->check = Checksum(ip, 20);
  struct udphdr* udp = (struct udphdr*)(frame + 34);
  udp->source = htons(40000);
  udp->dest = htons(9);
  udp->len = htons(sizeof frame - 34);

  struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = (int)ifindex, .sll_halen = 6};
  memcpy(to.sll_addr, eth->ether_dhost, 6);
  struct iovec iov = {frame, sizeof frame};
  enum { kBatch = 64 };
  struct mmsghdr msgs[kBatch];
  for (int i = 0; i < kBatch; i++) {
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_name = &to;
    msgs[i].msg_hdr.msg_namelen = sizeof to;
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  char* a = cold ? malloc(cold) : NULL;
  char* b = cold ? malloc(cold) : NULL;
  if (cold && (!a || !b)) return 1;
  if (cold) {
    memset(a, 1, cold);
    memset(b, 2, cold);
  }
  double start = ThreadCpuNs();
  long sent = 0;
  while (sent < frames) {
    if (cold) {
      memcpy(b, a, cold);
      memcpy(a, b, cold);
    }
    int n = sendmmsg(fd, msgs, cold ? 1 : kBatch, 0);
    if (n < 0) {
      perror("sendmmsg");
      return 1;
    }
    sent += n;
  }
  double ns = (ThreadCpuNs() - start) / sent;
  if (cold) {
    // The copies alone, measured the same way, are taken off.
    double copy_start = ThreadCpuNs();
    for (long i = 0; i < sent; i++) {
      memcpy(b, a, cold);
      memcpy(a, b, cold);
      __asm__ volatile("" ::"r"(a), "r"(b) : "memory");
    }
    ns -= (ThreadCpuNs() - copy_start) / sent;
  }
  printf("%.0f\n", ns);
  close(fd);
  return 0;
}
