#include "tests/support/busybox_rootfs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

#include "runtime/common/file_util.h"

namespace berth::testing {

void BuildBusyboxRootfs(const std::string& dir) {
  const char* busybox = "/bin/busybox";
  if (::access(busybox, X_OK) != 0) {
    throw std::runtime_error("busybox-static is not installed (/bin/busybox)");
  }
  MakeDirs(dir, 0755);
  ::chmod(dir.c_str(), 0755);
  for (const char* sub : {"bin", "proc", "sys", "dev", "tmp", "etc", "mnt", "root", "usr/bin"}) {
    MakeDirs(JoinPath(dir, sub), 0755);
  }
  ::chmod(JoinPath(dir, "tmp").c_str(), 01777);
  // A copy, not a link: the rootfs must not share an inode with the host's binary.
  std::string content = ReadFile(busybox);
  std::string target = JoinPath(dir, "bin/busybox");
  WriteFileAtomic(target, content, 0755);
  ::chmod(target.c_str(), 0755);
  FILE* list = ::popen("/bin/busybox --list", "r");
  if (!list) throw std::runtime_error("busybox --list failed");
  char name[256];
  while (std::fgets(name, sizeof name, list)) {
    std::string applet(name);
    while (!applet.empty() && (applet.back() == '\n' || applet.back() == '\r')) applet.pop_back();
    if (applet.empty() || applet == "busybox") continue;
    ::symlink("busybox", JoinPath(dir, "bin/" + applet).c_str());
  }
  ::pclose(list);
  WriteFileAtomic(JoinPath(dir, "etc/passwd"),
                  "root:x:0:0:root:/root:/bin/sh\n"
                  "nobody:x:65534:65534:nobody:/:/bin/false\n");
  WriteFileAtomic(JoinPath(dir, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
}

}  // namespace berth::testing
