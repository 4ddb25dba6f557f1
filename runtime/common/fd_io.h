// Whole reads and writes on a descriptor, and passing a descriptor over a unix socket.
// No allocation and no exceptions in WriteFully and ReadFully: they are used between fork
// and exec.
#pragma once

#include <cstddef>
#include <string_view>

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

}  // namespace berth
