// One error type for all of Berth. It carries a kind (which the REST layer maps to an
// HTTP status in one place), the errno when a system call failed, and a message that
// grows a context chain as it travels up: "create container c1: mount /proc: EPERM".
#pragma once

#include <cerrno>
#include <exception>
#include <string>
#include <string_view>

namespace berth {

enum class ErrorKind {
  kInvalidArgument,    // bad input from the caller: a field, a path, a value
  kNotFound,           // the thing named does not exist
  kAlreadyExists,      // the name is taken
  kConflict,           // the current state forbids the request
  kUnsupported,        // this host or build cannot do it
  kResourceExhausted,  // a limit was hit: disk full, too many processes
  kSystem,             // a system call failed for another reason
  kInternal,           // a bug
};

std::string_view ErrorKindName(ErrorKind kind);

class Error : public std::exception {
 public:
  Error(ErrorKind kind, std::string message, int sys_errno = 0);

  // A failed system call: "open /x/etc/passwd: ELOOP (Too many levels of symbolic links)".
  // The kind follows the errno (ENOENT -> kNotFound, EEXIST -> kAlreadyExists, ...).
  static Error FromErrno(std::string_view syscall, std::string_view path, int sys_errno);

  ErrorKind kind() const { return kind_; }
  int sys_errno() const { return errno_; }
  const std::string& message() const { return message_; }
  const char* what() const noexcept override { return message_.c_str(); }

  // Prepends "context: " so the outermost caller's words come first.
  Error& WithContext(std::string_view context);

 private:
  ErrorKind kind_;
  int errno_;
  std::string message_;
};

// Throws Error::FromErrno with the current errno.
[[noreturn]] void ThrowErrno(std::string_view syscall, std::string_view path = {});
[[noreturn]] void ThrowErrnoValue(int sys_errno, std::string_view syscall,
                                  std::string_view path = {});

// Symbolic name of an errno value ("ENOENT"), or the number when unknown.
std::string ErrnoName(int sys_errno);

// Runs fn; if it throws an Error, adds the context and rethrows.
template <typename Fn>
decltype(auto) WithContext(std::string_view context, Fn&& fn) {
  try {
    return fn();
  } catch (Error& e) {
    e.WithContext(context);
    throw;
  }
}

}  // namespace berth
