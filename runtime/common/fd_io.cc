#include "runtime/common/fd_io.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "runtime/common/error.h"

namespace berth {

namespace {

template <typename WriteSome>
bool WriteLoop(const void* data, size_t len, WriteSome write_some) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = write_some(p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

bool WriteFully(int fd, const void* data, size_t len) {
  return WriteLoop(data, len, [fd](const char* p, size_t n) { return ::write(fd, p, n); });
}

bool SendFully(int sock, const void* data, size_t len) {
  return WriteLoop(data, len,
                   [sock](const char* p, size_t n) { return ::send(sock, p, n, MSG_NOSIGNAL); });
}

bool ReadFully(int fd, void* data, size_t len) {
  char* p = static_cast<char*>(data);
  while (len > 0) {
    ssize_t n = ::read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

namespace {

// One data byte plus room for one descriptor.
struct FdMessage {
  char byte = 'T';
  struct iovec iov = {&byte, 1};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg = {};
  FdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
  }
  FdMessage(const FdMessage&) = delete;
  FdMessage& operator=(const FdMessage&) = delete;
};

}  // namespace

void SendFd(int sock, int fd, std::string_view what) {
  FdMessage m;
  struct cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  do {
    n = ::sendmsg(sock, &m.msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != 1) ThrowErrno("sendmsg", what);
}

int ReceiveFd(int sock) {
  for (;;) {
    FdMessage m;
    ssize_t n = ::recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    struct cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
    if (c == nullptr || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
  }
}

}  // namespace berth

namespace berth {

void SendMessageWithFds(int sock, std::string_view body, const std::vector<int>& fds,
                        std::string_view what) {
  if (fds.size() > kMaxMessageFds) ThrowErrnoValue(E2BIG, "sendmsg", what);
  uint64_t len = body.size();
  struct iovec iov = {&len, sizeof len};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxMessageFds)] = {};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno("sendmsg", what);
  if (static_cast<size_t>(n) != sizeof len || !SendFully(sock, body.data(), body.size())) {
    ThrowErrno("send", what);
  }
}

bool ReceiveMessageWithFds(int sock, std::string* body, std::vector<UniqueFd>* fds,
                           std::string_view what, size_t max_body) {
  uint64_t len = 0;
  struct iovec iov = {&len, sizeof len};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxMessageFds)] = {};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return false;
  if (n < 0) ThrowErrno("recvmsg", what);
  fds->clear();
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds->emplace_back(fd);
    }
  }
  if (static_cast<size_t>(n) != sizeof len || (msg.msg_flags & MSG_CTRUNC) != 0) {
    throw Error(ErrorKind::kInternal, std::string(what) + ": truncated message header");
  }
  if (len > max_body) throw Error(ErrorKind::kInternal, std::string(what) + ": message too large");
  body->assign(len, '\0');
  if (!ReadFully(sock, body->data(), body->size())) {
    throw Error(ErrorKind::kInternal, std::string(what) + ": truncated message");
  }
  return true;
}

}  // namespace berth
