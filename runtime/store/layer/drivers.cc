#include "runtime/store/layer/drivers.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <random>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/store/layer/fs_ops.h"

namespace berth::store {
namespace {

std::string RandomLinkName() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::random_device rd;
  std::string out(12, 'A');
  for (char& c : out) c = kAlphabet[rd() % (sizeof kAlphabet - 1)];
  return out;
}

Mount Bind(const std::string& dir, bool readonly) {
  return Mount{"bind", dir, {"rbind", readonly ? "ro" : "rw", "nodev"}};
}

}  // namespace

bool KernelHasOverlay() {
  auto fs = ReadFileIfExists("/proc/filesystems");
  return fs && fs->find("\toverlay\n") != std::string::npos;
}

OverlaySnapshotter::OverlaySnapshotter(std::string root) : LocalSnapshotter(std::move(root)) {
  MakeDirs(this->root() + "/l", 0700);
}

void OverlaySnapshotter::CreateDirs(SnapshotRecord& rec, const std::vector<const SnapshotRecord*>&,
                                    const SnapshotDb& db) {
  std::string dir = SnapshotDir(rec.id);
  MakeDirs(dir + "/fs", 0755);
  if (rec.info.kind == SnapshotKind::kActive) MakeDirs(dir + "/work", 0700);
  for (;;) {
    rec.link = RandomLinkName();
    bool taken = false;
    for (const auto& [k, other] : db.records) taken = taken || other.link == rec.link;
    if (!taken && !PathExists(LinkPath(rec))) break;
  }
  // Relative, so the store can be moved as a whole.
  std::string target = "../snapshots/" + rec.id + "/fs";
  if (::symlink(target.c_str(), LinkPath(rec).c_str()) != 0) ThrowErrno("symlink", LinkPath(rec));
}

std::vector<Mount> OverlaySnapshotter::MountsFor(
    const SnapshotRecord& rec, const std::vector<const SnapshotRecord*>& chain) const {
  std::string fs = FsDir(rec);
  if (rec.info.kind == SnapshotKind::kView) {
    // overlay needs an upper dir or at least two lower dirs.
    if (chain.empty()) return {Bind(fs, true)};
    if (chain.size() == 1) return {Bind(FsDir(*chain[0]), true)};
  } else if (chain.empty()) {
    return {Bind(fs, false)};
  }
  std::string lower = "lowerdir=";
  for (size_t i = 0; i < chain.size(); ++i) {
    if (i) lower += ':';
    lower += LinkPath(*chain[i]);
  }
  Mount m{"overlay", "overlay", {"index=off", "nodev"}};
  if (rec.info.kind == SnapshotKind::kView) {
    m.options.push_back("ro");
    m.options.push_back(lower);
  } else {
    m.options.push_back(lower);
    // The upper dir must stay a plain picture of the layer for Changes(): no redirect or
    // metacopy xattrs (both off by default on most kernels; say so in case they aren't).
    m.options.push_back("redirect_dir=off");
    m.options.push_back("metacopy=off");
    m.options.push_back("upperdir=" + fs);
    m.options.push_back("workdir=" + SnapshotDir(rec.id) + "/work");
  }
  return {m};
}

std::vector<DiffEntry> OverlaySnapshotter::ChangesFor(
    const SnapshotRecord& rec, const std::vector<const SnapshotRecord*>& chain) const {
  std::vector<std::string> lowers;
  for (const SnapshotRecord* c : chain) lowers.push_back(FsDir(*c));
  return OverlayDiff(FsDir(rec), lowers);
}

void OverlaySnapshotter::OnCommit(const SnapshotRecord& rec) {
  // The work dir is scratch space of an active overlay; a committed layer never needs it.
  RemoveTree(SnapshotDir(rec.id) + "/work");
}

void OverlaySnapshotter::RemoveDirs(const SnapshotRecord& rec) {
  if (!rec.link.empty() && ::unlink(LinkPath(rec).c_str()) != 0 && errno != ENOENT) {
    ThrowErrno("unlink", LinkPath(rec));
  }
  LocalSnapshotter::RemoveDirs(rec);
}

size_t OverlaySnapshotter::RemoveOrphanLinks() {
  size_t removed = 0;
  std::string dir = root() + "/l";
  for (const std::string& n : ListDirectory(dir, IfMissing::kThrow)) {
    struct stat st;
    // stat follows the link: ENOENT means its snapshot directory is gone.
    if (::stat((dir + "/" + n).c_str(), &st) != 0 && errno == ENOENT &&
        ::unlink((dir + "/" + n).c_str()) == 0) {
      removed++;
    }
  }
  return removed;
}

VfsSnapshotter::VfsSnapshotter(std::string root) : LocalSnapshotter(std::move(root)) {}

void VfsSnapshotter::CreateDirs(SnapshotRecord& rec,
                                const std::vector<const SnapshotRecord*>& chain,
                                const SnapshotDb&) {
  std::string fs = FsDir(rec);
  MakeDirs(fs, 0755);
  // A view of a committed layer is a read-only bind of it; no copy needed.
  if (rec.info.kind == SnapshotKind::kActive && !chain.empty()) CopyTree(FsDir(*chain[0]), fs);
}

std::vector<Mount> VfsSnapshotter::MountsFor(
    const SnapshotRecord& rec, const std::vector<const SnapshotRecord*>& chain) const {
  if (rec.info.kind == SnapshotKind::kView) {
    return {Bind(chain.empty() ? FsDir(rec) : FsDir(*chain[0]), true)};
  }
  return {Bind(FsDir(rec), false)};
}

std::vector<DiffEntry> VfsSnapshotter::ChangesFor(
    const SnapshotRecord& rec, const std::vector<const SnapshotRecord*>& chain) const {
  return TreeDiff(FsDir(rec), chain.empty() ? "" : FsDir(*chain[0]));
}

std::unique_ptr<Snapshotter> OpenSnapshotter(const std::string& driver, const std::string& root) {
  if (driver == "overlay" || driver.empty()) {
    if (!KernelHasOverlay()) {
      throw Error(ErrorKind::kUnsupported,
                  "storage driver overlay: kernel has no overlay filesystem");
    }
    return std::make_unique<OverlaySnapshotter>(root);
  }
  if (driver == "vfs") return std::make_unique<VfsSnapshotter>(root);
  if (driver == "btrfs") return std::make_unique<BtrfsSnapshotter>(root);
  throw Error(ErrorKind::kUnsupported,
              "storage driver \"" + driver + "\" is not supported (overlay, vfs, btrfs)");
}

}  // namespace berth::store
