#include "runtime/common/error.h"

#include <cstring>

namespace berth {

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return "invalid argument";
    case ErrorKind::kNotFound:
      return "not found";
    case ErrorKind::kAlreadyExists:
      return "already exists";
    case ErrorKind::kConflict:
      return "conflict";
    case ErrorKind::kUnsupported:
      return "unsupported";
    case ErrorKind::kResourceExhausted:
      return "resource exhausted";
    case ErrorKind::kSystem:
      return "system error";
    case ErrorKind::kInternal:
      return "internal error";
  }
  return "unknown";
}

Error::Error(ErrorKind kind, std::string message, int sys_errno)
    : kind_(kind), errno_(sys_errno), message_(std::move(message)) {}

static ErrorKind KindForErrno(int sys_errno) {
  switch (sys_errno) {
    case ENOENT:
    case ESRCH:
    case ENODEV:
      return ErrorKind::kNotFound;
    case EEXIST:
      return ErrorKind::kAlreadyExists;
    case EINVAL:
    case ENOTDIR:
    case EISDIR:
    case ELOOP:
    case ENAMETOOLONG:
      return ErrorKind::kInvalidArgument;
    case EBUSY:
      return ErrorKind::kConflict;
    case ENOSPC:
    case EDQUOT:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case EAGAIN:
      return ErrorKind::kResourceExhausted;
    case ENOSYS:
    case EOPNOTSUPP:
      return ErrorKind::kUnsupported;
    default:
      return ErrorKind::kSystem;
  }
}

std::string ErrnoName(int sys_errno) {
  const char* name = strerrorname_np(sys_errno);
  return name ? std::string(name) : std::to_string(sys_errno);
}

Error Error::FromErrno(std::string_view syscall, std::string_view path, int sys_errno) {
  std::string msg(syscall);
  if (!path.empty()) {
    msg += ' ';
    msg += path;
  }
  msg += ": ";
  msg += ErrnoName(sys_errno);
  msg += " (";
  msg += strerrordesc_np(sys_errno) ? strerrordesc_np(sys_errno) : "unknown error";
  msg += ')';
  return Error(KindForErrno(sys_errno), std::move(msg), sys_errno);
}

Error& Error::WithContext(std::string_view context) {
  std::string msg(context);
  msg += ": ";
  msg += message_;
  message_ = std::move(msg);
  return *this;
}

void ThrowErrno(std::string_view syscall, std::string_view path) {
  throw Error::FromErrno(syscall, path, errno);
}

void ThrowErrnoValue(int sys_errno, std::string_view syscall, std::string_view path) {
  throw Error::FromErrno(syscall, path, sys_errno);
}

}  // namespace berth
