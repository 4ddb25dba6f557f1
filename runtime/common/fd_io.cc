#include "runtime/common/fd_io.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
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
