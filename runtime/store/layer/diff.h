// The changes of one layer against its parent, in the order a layer tar wants them
// (parents before children, names sorted bytewise), and the layer tar made from them.
//
// overlay: a layer's own content is its upper dir: 0/0 character devices are deletions
// (".wh.<name>" in the tar), trusted.overlay.opaque=y marks a directory that hides
// everything below it (".wh..wh..opq"). The lower layers are only consulted to tell an
// added path from a changed one and to list what an opaque directory hides.
// vfs (full copies): the tree is compared with its parent's copy by metadata (type, mode,
// owner, size, mtime in ns, device, link target, xattrs), as Docker's naive differ does;
// the contents of files with equal metadata are not read.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runtime/store/archive/tar_writer.h"

namespace berth::store {

enum class ChangeKind { kAdded, kChanged, kDeleted };
// "A", "C", "D" as `docker diff` prints them.
char ChangeLetter(ChangeKind kind);

struct DiffEntry {
  enum class Op {
    kEntry,     // the file at source goes into the tar as path
    kWhiteout,  // path is ".../.wh.<name>"
    kOpaque,    // path is "<dir>/.wh..wh..opq"
    kListOnly,  // nothing in the tar (a name an opaque directory hides); listed as deleted
  };
  Op op = Op::kEntry;
  std::string path;    // member path, relative, no leading "/"
  std::string source;  // host path (kEntry)
  // What `diff` reports, and for which path (the whiteout's target, not ".wh.x"). Empty
  // for a parent directory carried along only so its metadata is kept.
  std::optional<ChangeKind> change;
  std::string changed_path;
};

// lowers: the parent chain's own dirs, nearest first.
std::vector<DiffEntry> OverlayDiff(const std::string& upper,
                                   const std::vector<std::string>& lowers);
// base empty: no parent, everything in dir is added.
std::vector<DiffEntry> TreeDiff(const std::string& dir, const std::string& base);

// Writes the entries as a layer tar (whiteouts as empty regular files; files with several
// links among the entries as tar hardlinks to the first one written) and finishes it.
struct LayerTar {
  Digest diff_id;
  uint64_t size = 0;
};
// Ownership on disk that belongs to a user namespace's range (an instance's upper layer:
// root inside is `uid` on the host): tar headers get the ids as seen inside, and ids outside
// the range the overflow id 65534, as the instance saw them. size 0: ids as they are.
struct IdShift {
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t size = 0;
};
LayerTar WriteLayerTar(const std::vector<DiffEntry>& entries, TarWriter& writer,
                       const IdShift& shift = {});

}  // namespace berth::store
