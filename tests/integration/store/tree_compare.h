// File-by-file description of a directory tree, for comparing merged root filesystems:
// type, mode (incl. setuid/setgid), owner, size, content hash, link target, hardlink
// identity (the first path of each multiply-linked inode) and user./security. xattrs.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/store/blob/digest.h"

namespace berth::store::testing {

struct TreeOptions {
  bool mtimes = false;  // compare mtimes (seconds) of non-directories
  bool owners = true;
};

inline std::string ContentHash(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return "unreadable";
  Sha256 h;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) h.Update(buf, static_cast<size_t>(n));
  ::close(fd);
  return h.Final().Short();
}

inline std::string Xattrs(const std::string& path) {
  char names[4096];
  ssize_t len = ::llistxattr(path.c_str(), names, sizeof names);
  std::vector<std::string> out;
  for (ssize_t pos = 0; len > 0 && pos < len;) {
    std::string name = names + pos;
    pos += static_cast<ssize_t>(name.size()) + 1;
    if (name.rfind("user.", 0) != 0 && name.rfind("security.", 0) != 0) continue;
    char value[4096];
    ssize_t v = ::lgetxattr(path.c_str(), name.c_str(), value, sizeof value);
    out.push_back(name + "=" + std::string(value, v > 0 ? static_cast<size_t>(v) : 0));
  }
  std::sort(out.begin(), out.end());
  std::string s;
  for (const auto& x : out) s += x + ";";
  return s;
}

inline void Describe(const std::string& root, const std::string& rel, const TreeOptions& o,
                     std::map<std::pair<dev_t, ino_t>, std::string>& inodes,
                     std::map<std::string, std::string>& out) {
  std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) {
    std::string path = rel.empty() ? n : rel + "/" + n;
    std::string host = root + "/" + path;
    struct stat st;
    if (::lstat(host.c_str(), &st) != 0) continue;
    std::ostringstream s;
    s << std::oct << st.st_mode << std::dec;
    if (o.owners) s << " " << st.st_uid << ":" << st.st_gid;
    if (S_ISREG(st.st_mode)) {
      s << " size=" << st.st_size << " sha=" << ContentHash(host);
      if (st.st_nlink > 1) {
        auto [it, fresh] = inodes.try_emplace({st.st_dev, st.st_ino}, path);
        s << " link=" << it->second;
      }
      if (o.mtimes) s << " mtime=" << st.st_mtim.tv_sec;
    }
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t len = ::readlink(host.c_str(), buf, sizeof buf);
      s << " -> " << std::string(buf, len > 0 ? static_cast<size_t>(len) : 0);
    }
    s << " " << Xattrs(host);
    out[path] = s.str();
    if (S_ISDIR(st.st_mode)) Describe(root, path, o, inodes, out);
  }
}

inline std::map<std::string, std::string> DescribeTree(const std::string& root,
                                                       const TreeOptions& o = {}) {
  std::map<std::pair<dev_t, ino_t>, std::string> inodes;
  std::map<std::string, std::string> out;
  Describe(root, "", o, inodes, out);
  return out;
}

// A readable difference for assertion messages; empty when equal.
inline std::string TreeDifference(const std::map<std::string, std::string>& a,
                                  const std::map<std::string, std::string>& b) {
  std::string out;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end()) {
      out += "only left: " + k + " " + v + "\n";
    } else if (it->second != v) {
      out += "differs: " + k + "\n  left:  " + v + "\n  right: " + it->second + "\n";
    }
  }
  for (const auto& [k, v] : b) {
    if (!a.count(k)) out += "only right: " + k + " " + v + "\n";
  }
  return out;
}

}  // namespace berth::store::testing
