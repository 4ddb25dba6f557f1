// Whole reads and writes on a descriptor, and passing a descriptor over a unix socket.
// No allocation and no exceptions in WriteFully and ReadFully: they are used between fork
// and exec.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/unique_fd.h"

namespace berth {

// Writes all of `data` (retrying short writes and EINTR); false on error.
bool WriteFully(int fd, const void* data, size_t len);
// The same on a socket, with MSG_NOSIGNAL: a gone peer is EPIPE, never a SIGPIPE, whatever
// the caller's disposition.
bool SendFully(int sock, const void* data, size_t len);
// Reads exactly `len` bytes; false on error or EOF first.
bool ReadFully(int fd, void* data, size_t len);

// Sends `fd` with one byte of data (SCM_RIGHTS), as runc and crun send a console.
// Throws an Error naming `what` when it cannot.
void SendFd(int sock, int fd, std::string_view what);
// Receives a descriptor sent by SendFd, close-on-exec; -1 at EOF or on error. Messages
// without one are skipped.
int ReceiveFd(int sock);

// A message with descriptors on a stream socket: an 8-byte length and the descriptors
// (SCM_RIGHTS, at most kMaxMessageFds) in one sendmsg, then the body. For handing a
// prepared process its part of a create, which carries a spec of any size.
inline constexpr size_t kMaxMessageFds = 32;
void SendMessageWithFds(int sock, std::string_view body, const std::vector<int>& fds,
                        std::string_view what);
// Receives one; false at EOF before the length. The descriptors are close-on-exec. Throws
// an Error naming `what` on a short or oversized message.
bool ReceiveMessageWithFds(int sock, std::string* body, std::vector<UniqueFd>* fds,
                           std::string_view what, size_t max_body = 64u << 20);
}  // namespace berth
