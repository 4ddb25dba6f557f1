#include "tests/integration/network/net_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "runtime/common/bpf.h"
#include "runtime/common/error.h"
#include "runtime/network/netlink.h"
#include "runtime/network/netns.h"

namespace berth::net::testing {
namespace {

sockaddr_in MakeAddr(const std::string& address, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) {
    throw std::runtime_error("bad address " + address);
  }
  return sa;
}

bool WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

}  // namespace

InstanceProcess::InstanceProcess() {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  pid_ = ::fork();
  if (pid_ < 0) ThrowErrno("fork");
  if (pid_ == 0) {
    // Only async-signal-safe calls between fork and _exit.
    ::close(ready[0]);
    char ok = ::unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
    (void)!::write(ready[1], &ok, 1);
    ::close(ready[1]);
    // Like a container's init after exec, hold nothing of the parent's: an inherited fd of
    // another instance's namespace would keep that namespace (and its veth) alive.
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char ok = 0;
  ssize_t n = ::read(ready[0], &ok, 1);
  ::close(ready[0]);
  if (n != 1 || ok != 'y') throw std::runtime_error("instance child failed to unshare");
  netns_ = OpenNetnsOfPid(pid_);
}

InstanceProcess::~InstanceProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

namespace {
template <typename Fn>
void ForEachTcxIngressProgram(int netns_fd, const std::string& link, Fn&& fn) {
  const auto ifindex =
      static_cast<uint32_t>(Netlink::OpenIn(NetnsRef::Fd(netns_fd)).GetLink(link).index);
  RunInNetns(netns_fd, [&] {
    for (uint32_t id : bpf::QueryPrograms(ifindex, bpf::kTcxIngress, link)) {
      UniqueFd prog = bpf::ProgramById(id);
      if (prog) fn(ifindex, id, prog.get());
    }
  });
}
}  // namespace

std::vector<std::string> TcxIngressPrograms(int netns_fd, const std::string& link) {
  std::vector<std::string> names;
  ForEachTcxIngressProgram(netns_fd, link, [&](uint32_t, uint32_t id, int prog) {
    names.push_back(bpf::ProgramName(prog) + "#" + std::to_string(id));
  });
  return names;
}

void DetachTcxIngressPrograms(int netns_fd, const std::string& link) {
  ForEachTcxIngressProgram(netns_fd, link, [&](uint32_t ifindex, uint32_t, int prog) {
    bpf::DetachProgram(ifindex, bpf::kTcxIngress, prog, link);
  });
}

bool Ping(int netns_fd, const std::string& address) {
  pid_t pid = ::fork();
  if (pid < 0) ThrowErrno("fork");
  if (pid == 0) {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) ::_exit(126);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl("/bin/busybox", "busybox", "ping", "-c", "1", "-W", "2", address.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

HttpServer::HttpServer(int netns_fd, uint16_t port, std::string body) : body_(std::move(body)) {
  listen_fd_ = RunInNetns(netns_fd, [&] {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) ThrowErrno("socket");
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa = MakeAddr("0.0.0.0", port);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) ThrowErrno("bind");
    if (::listen(fd.get(), 16) != 0) ThrowErrno("listen");
    return fd;
  });
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  stop_pipe_[0].reset(p[0]);
  stop_pipe_[1].reset(p[1]);
  thread_ = std::thread([this] {
    for (;;) {
      pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {stop_pipe_[0].get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 || fds[1].revents) return;
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      UniqueFd conn(
          ::accept4(listen_fd_.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
      if (!conn) continue;
      char buf[1024];
      if (WaitReadable(conn.get(), 2000)) (void)!::read(conn.get(), buf, sizeof buf);
      char peer_text[INET_ADDRSTRLEN] = {};
      inet_ntop(AF_INET, &peer.sin_addr, peer_text, sizeof peer_text);
      std::string content = body_ + " " + peer_text;
      std::string response =
          "HTTP/1.0 200 OK\r\nContent-Length: " + std::to_string(content.size()) + "\r\n\r\n" +
          content;
      (void)!::write(conn.get(), response.data(), response.size());
    }
  });
}

HttpServer::~HttpServer() {
  (void)!::write(stop_pipe_[1].get(), "x", 1);
  thread_.join();
}

std::optional<std::string> HttpGet(int netns_fd, const std::string& address, uint16_t port) {
  return RunInNetns(netns_fd, [&]() -> std::optional<std::string> {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) ThrowErrno("socket");
    sockaddr_in sa = MakeAddr(address, port);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 &&
        errno != EINPROGRESS) {
      return std::nullopt;
    }
    pollfd p{fd.get(), POLLOUT, 0};
    if (::poll(&p, 1, 2000) != 1) return std::nullopt;
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return std::nullopt;
    std::string request = "GET / HTTP/1.0\r\n\r\n";
    if (::write(fd.get(), request.data(), request.size()) < 0) return std::nullopt;
    std::string response;
    char buf[1024];
    while (WaitReadable(fd.get(), 2000)) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n <= 0) break;
      response.append(buf, static_cast<size_t>(n));
    }
    auto body = response.find("\r\n\r\n");
    if (body == std::string::npos) return std::nullopt;
    return response.substr(body + 4);
  });
}

UdpReceiver::UdpReceiver(int netns_fd, const std::string& address, uint16_t port) {
  fd_ = RunInNetns(netns_fd, [&] {
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) ThrowErrno("socket");
    sockaddr_in sa = MakeAddr(address, port);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) ThrowErrno("bind");
    return fd;
  });
}

std::optional<std::string> UdpReceiver::Receive(int timeout_ms) {
  if (!WaitReadable(fd_.get(), timeout_ms)) return std::nullopt;
  char buf[1500];
  ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

void SendUdp(int netns_fd, const std::string& source, const std::string& dest, uint16_t port,
             const std::string& payload) {
  RunInNetns(netns_fd, [&] {
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) ThrowErrno("socket");
    sockaddr_in src = MakeAddr(source, 0);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      ThrowErrno("bind", source);
    }
    sockaddr_in dst = MakeAddr(dest, port);
    if (::sendto(fd.get(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&dst),
                 sizeof dst) < 0) {
      ThrowErrno("sendto", dest);
    }
  });
}

void SendRawUdp(int netns_fd, const MacAddress& src_mac, const MacAddress& dst_mac,
                const std::string& source, const std::string& dest, uint16_t port,
                const std::string& payload, bool priority_tag) {
  std::string frame(dst_mac.bytes.begin(), dst_mac.bytes.end());
  frame.append(src_mac.bytes.begin(), src_mac.bytes.end());
  if (priority_tag) frame += std::string("\x81\x00\x00\x00", 4);
  frame += std::string("\x08\x00", 2);
  auto put16 = [](std::string& s, size_t at, uint16_t v) {
    s[at] = static_cast<char>(v >> 8);
    s[at + 1] = static_cast<char>(v & 0xff);
  };
  std::string ip(20, '\0');
  ip[0] = 0x45;
  put16(ip, 2, static_cast<uint16_t>(20 + 8 + payload.size()));
  ip[8] = 64;
  ip[9] = IPPROTO_UDP;
  sockaddr_in src = MakeAddr(source, 0), dst = MakeAddr(dest, 0);
  std::memcpy(&ip[12], &src.sin_addr, 4);
  std::memcpy(&ip[16], &dst.sin_addr, 4);
  uint32_t sum = 0;
  for (size_t i = 0; i < ip.size(); i += 2) {
    sum += (static_cast<uint8_t>(ip[i]) << 8) | static_cast<uint8_t>(ip[i + 1]);
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  put16(ip, 10, static_cast<uint16_t>(~sum));
  std::string udp(8, '\0');  // checksum 0: none, allowed for UDP over IPv4
  put16(udp, 0, 40000);
  put16(udp, 2, port);
  put16(udp, 4, static_cast<uint16_t>(8 + payload.size()));
  frame += ip + udp + payload;
  RunInNetns(netns_fd, [&] {
    UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
    if (!fd) ThrowErrno("socket(AF_PACKET)");
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = static_cast<int>(::if_nametoindex("eth0"));
    to.sll_halen = 6;
    std::memcpy(to.sll_addr, dst_mac.bytes.data(), 6);
    if (::sendto(fd.get(), frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to),
                 sizeof to) < 0) {
      ThrowErrno("sendto(AF_PACKET)", "eth0");
    }
  });
}

std::vector<std::string> LinksWithPrefix(int netns_fd, const std::string& prefix) {
  std::vector<std::string> out;
  Netlink nl = Netlink::OpenIn(NetnsRef::Fd(netns_fd));
  for (const auto& l : nl.ListLinks()) {
    if (l.name.rfind(prefix, 0) == 0) out.push_back(l.name);
  }
  return out;
}

}  // namespace berth::net::testing
