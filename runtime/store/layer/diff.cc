#include "runtime/store/layer/diff.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/unique_fd.h"
#include "runtime/store/archive/path.h"

namespace berth::store {
namespace {

bool Lstat(const std::string& path, struct stat* st) {
  if (::lstat(path.c_str(), st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  ThrowErrno("stat", path);
}

bool IsWhiteoutNode(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == 0; }

std::optional<std::string> GetXattr(const std::string& path, const char* name) {
  char buf[256];
  ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof buf);
  if (n < 0) {
    if (errno == ENODATA || errno == ENOTSUP) return std::nullopt;
    if (errno == ERANGE) return std::string("(long)");
    ThrowErrno(std::string("lgetxattr ") + name, path);
  }
  return std::string(buf, static_cast<size_t>(n));
}

bool IsOpaque(const std::string& path) {
  auto v = GetXattr(path, "trusted.overlay.opaque");
  return v && *v == "y";
}

std::string Join(const std::string& rel, const std::string& name) {
  return rel.empty() ? name : rel + "/" + name;
}

std::string WhiteoutPath(const std::string& rel, const std::string& name) {
  return Join(rel, std::string(kWhiteoutPrefix) + name);
}

// What the lower layers (nearest first) show at a path.
class LowerView {
 public:
  explicit LowerView(const std::vector<std::string>& lowers) : lowers_(lowers) {}

  bool Exists(const std::string& rel) const {
    std::vector<std::string> parts = Split(rel);
    for (const std::string& layer : lowers_) {
      std::string cur = layer;
      bool opaque_above = false;
      for (size_t i = 0; i < parts.size(); ++i) {
        cur += "/" + parts[i];
        struct stat st;
        if (!Lstat(cur, &st)) {
          if (opaque_above) return false;
          break;  // not in this layer: ask the next one
        }
        if (IsWhiteoutNode(st)) return false;
        if (i + 1 == parts.size()) return true;
        if (!S_ISDIR(st.st_mode)) return false;  // a file here hides the rest
        if (IsOpaque(cur)) opaque_above = true;
      }
    }
    return false;
  }

  // The names the merged lower view shows in directory rel.
  std::set<std::string> Names(const std::string& rel) const {
    std::set<std::string> names, hidden;
    std::vector<std::string> parts = Split(rel);
    for (const std::string& layer : lowers_) {
      std::string cur = layer;
      bool stop = false, present = true;
      for (size_t i = 0; i < parts.size(); ++i) {
        cur += "/" + parts[i];
        struct stat st;
        if (!Lstat(cur, &st)) {
          present = false;
          break;
        }
        if (IsWhiteoutNode(st) || !S_ISDIR(st.st_mode)) return names;
        if (IsOpaque(cur)) stop = true;
      }
      if (present) {
        for (const std::string& n : ListDirectory(cur)) {
          struct stat st;
          if (Lstat(cur + "/" + n, &st) && IsWhiteoutNode(st)) {
            hidden.insert(n);
          } else if (!hidden.count(n)) {
            names.insert(n);
          }
        }
        if (parts.empty() && IsOpaque(cur)) stop = true;
      } else if (stop) {
        break;
      }
      if (stop) break;
    }
    return names;
  }

 private:
  static std::vector<std::string> Split(const std::string& rel) {
    std::vector<std::string> parts;
    for (size_t start = 0; start < rel.size();) {
      size_t slash = rel.find('/', start);
      if (slash == std::string::npos) slash = rel.size();
      parts.push_back(rel.substr(start, slash - start));
      start = slash + 1;
    }
    return parts;
  }

  const std::vector<std::string>& lowers_;
};

void CheckNoOverlayFeatures(const std::string& path) {
  // Redirects and metacopy make the upper dir an incomplete picture of the layer; active
  // mounts switch both off, so finding one means someone else wrote this dir.
  for (const char* name : {"trusted.overlay.redirect", "trusted.overlay.metacopy"}) {
    if (GetXattr(path, name)) {
      throw Error(
          ErrorKind::kUnsupported,
          path + ": has " + name + "; diff of redirected/metacopy overlay dirs unsupported");
    }
  }
}

void OverlayWalk(const std::string& upper, const std::string& rel, const LowerView& lower,
                 bool lower_hidden, std::vector<DiffEntry>& out) {
  std::string dir = rel.empty() ? upper : upper + "/" + rel;
  for (const std::string& name : ListDirectory(dir)) {
    std::string path = Join(rel, name);
    std::string host = dir + "/" + name;
    struct stat st;
    if (!Lstat(host, &st)) continue;
    bool in_lower = !lower_hidden && lower.Exists(path);
    if (IsWhiteoutNode(st)) {
      DiffEntry e{DiffEntry::Op::kWhiteout, WhiteoutPath(rel, name), "", std::nullopt, path};
      if (in_lower) e.change = ChangeKind::kDeleted;
      out.push_back(std::move(e));
      continue;
    }
    CheckNoOverlayFeatures(host);
    out.push_back({DiffEntry::Op::kEntry, path, host,
                   in_lower ? ChangeKind::kChanged : ChangeKind::kAdded, path});
    if (!S_ISDIR(st.st_mode)) continue;
    bool opaque = IsOpaque(host);
    if (opaque) {
      out.push_back({DiffEntry::Op::kOpaque, Join(path, std::string(kOpaqueWhiteout)), "",
                     std::nullopt, path});
      if (in_lower) {
        std::set<std::string> mine;
        for (const std::string& n : ListDirectory(host)) mine.insert(n);
        for (const std::string& n : lower.Names(path)) {
          if (!mine.count(n)) {
            out.push_back({DiffEntry::Op::kListOnly, "", "", ChangeKind::kDeleted, Join(path, n)});
          }
        }
      }
    }
    OverlayWalk(upper, path, lower, lower_hidden || opaque || !in_lower, out);
  }
}

std::vector<std::pair<std::string, std::string>> AllXattrs(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  ssize_t len = ::llistxattr(path.c_str(), nullptr, 0);
  if (len <= 0) return out;
  std::string names(static_cast<size_t>(len), '\0');
  len = ::llistxattr(path.c_str(), names.data(), names.size());
  if (len < 0) ThrowErrno("llistxattr", path);
  names.resize(static_cast<size_t>(len));
  for (size_t pos = 0; pos < names.size();) {
    std::string name = names.c_str() + pos;
    pos += name.size() + 1;
    std::string value(65536, '\0');
    ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (n < 0) ThrowErrno("lgetxattr " + name, path);
    value.resize(static_cast<size_t>(n));
    out.emplace_back(std::move(name), std::move(value));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string LinkTarget(const std::string& path) {
  char buf[PATH_MAX + 1];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  if (n < 0) ThrowErrno("readlink", path);
  return std::string(buf, static_cast<size_t>(n));
}

bool SameMetadata(const std::string& a, const struct stat& sa, const std::string& b,
                  const struct stat& sb) {
  if (sa.st_mode != sb.st_mode || sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid ||
      sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec) {
    return false;
  }
  // A directory's size says nothing about its content.
  if (!S_ISDIR(sa.st_mode) && sa.st_size != sb.st_size) return false;
  if ((S_ISCHR(sa.st_mode) || S_ISBLK(sa.st_mode)) && sa.st_rdev != sb.st_rdev) return false;
  if (S_ISLNK(sa.st_mode) && LinkTarget(a) != LinkTarget(b)) return false;
  return AllXattrs(a) == AllXattrs(b);
}

// Everything below dir/rel as added.
void AddAll(const std::string& dir, const std::string& rel, std::vector<DiffEntry>& out) {
  for (const std::string& name : ListDirectory(dir + "/" + rel)) {
    std::string path = Join(rel, name);
    std::string host = dir + "/" + path;
    struct stat st;
    if (!Lstat(host, &st)) continue;
    out.push_back({DiffEntry::Op::kEntry, path, host, ChangeKind::kAdded, path});
    if (S_ISDIR(st.st_mode)) AddAll(dir, path, out);
  }
}

void TreeWalk(const std::string& dir, const std::string& base, const std::string& rel,
              std::vector<DiffEntry>& out) {
  std::vector<std::string> mine = ListDirectory(rel.empty() ? dir : dir + "/" + rel);
  std::vector<std::string> theirs = ListDirectory(rel.empty() ? base : base + "/" + rel);
  std::vector<std::string> all;
  std::set_union(mine.begin(), mine.end(), theirs.begin(), theirs.end(), std::back_inserter(all));
  for (const std::string& name : all) {
    std::string path = Join(rel, name);
    std::string host = dir + "/" + path, old = base + "/" + path;
    struct stat st, ost;
    bool have = Lstat(host, &st), had = Lstat(old, &ost);
    if (!have && !had) continue;
    if (!have) {
      out.push_back(
          {DiffEntry::Op::kWhiteout, WhiteoutPath(rel, name), "", ChangeKind::kDeleted, path});
      continue;
    }
    if (!had) {
      out.push_back({DiffEntry::Op::kEntry, path, host, ChangeKind::kAdded, path});
      if (S_ISDIR(st.st_mode)) AddAll(dir, path, out);
      continue;
    }
    bool same = SameMetadata(host, st, old, ost);
    if ((st.st_mode & S_IFMT) != (ost.st_mode & S_IFMT) || !S_ISDIR(st.st_mode)) {
      if (same) continue;
      out.push_back({DiffEntry::Op::kEntry, path, host, ChangeKind::kChanged, path});
      // A directory replacing a file: everything in it is new.
      if (S_ISDIR(st.st_mode)) AddAll(dir, path, out);
      continue;
    }
    // Both directories: the directory goes into the tar when it changed itself or carries
    // changes, so its metadata is restored when the changes are applied.
    size_t mark = out.size();
    out.push_back({DiffEntry::Op::kEntry, path, host, std::nullopt, path});
    if (!same) out.back().change = ChangeKind::kChanged;
    TreeWalk(dir, base, path, out);
    if (same && out.size() == mark + 1) out.pop_back();
  }
}

}  // namespace

char ChangeLetter(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kAdded:
      return 'A';
    case ChangeKind::kChanged:
      return 'C';
    case ChangeKind::kDeleted:
      return 'D';
  }
  return '?';
}

std::vector<DiffEntry> OverlayDiff(const std::string& upper,
                                   const std::vector<std::string>& lowers) {
  std::vector<DiffEntry> out;
  LowerView lower(lowers);
  OverlayWalk(upper, "", lower, lowers.empty(), out);
  return out;
}

std::vector<DiffEntry> TreeDiff(const std::string& dir, const std::string& base) {
  std::vector<DiffEntry> out;
  if (base.empty()) {
    AddAll(dir, "", out);
  } else {
    TreeWalk(dir, base, "", out);
  }
  return out;
}

LayerTar WriteLayerTar(const std::vector<DiffEntry>& entries, TarWriter& w, const IdShift& shift) {
  std::map<std::pair<dev_t, ino_t>, std::string> links;
  for (const DiffEntry& e : entries) {
    switch (e.op) {
      case DiffEntry::Op::kListOnly:
        continue;
      case DiffEntry::Op::kWhiteout:
      case DiffEntry::Op::kOpaque: {
        // Fixed metadata: the marker's own header carries no information.
        TarEntry t;
        t.path = e.path;
        w.AddBytes(t, "");
        continue;
      }
      case DiffEntry::Op::kEntry:
        break;
    }
    struct stat st;
    if (::lstat(e.source.c_str(), &st) != 0) ThrowErrno("stat", e.source);
    TarEntry t = EntryFromHost(e.source, e.path, st);
    if (shift.size) {
      auto inside = [&](uint64_t id, uint32_t base) -> uint64_t {
        return id >= base && id - base < shift.size ? id - base : 65534;
      };
      t.uid = inside(t.uid, shift.uid);
      t.gid = inside(t.gid, shift.gid);
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISSOCK(st.st_mode)) {
      continue;  // never part of a layer: extraction refuses devices, sockets carry nothing
    }
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto [it, fresh] = links.try_emplace({st.st_dev, st.st_ino}, e.path);
      if (!fresh) {
        t.hardlink = it->second;
        w.Header(t);
        continue;
      }
    }
    if (S_ISREG(st.st_mode)) {
      UniqueFd fd(::open(e.source.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) ThrowErrno("open", e.source);
      w.AddFile(t, fd.get(), e.source);
    } else {
      w.Header(t);
    }
  }
  LayerTar out;
  out.diff_id = w.Finish();
  out.size = w.size();
  return out;
}

}  // namespace berth::store
