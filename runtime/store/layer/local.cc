#include "runtime/store/layer/local.h"

#include <fcntl.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <set>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"
#include "runtime/store/layer/fs_ops.h"

namespace berth::store {
namespace {

constexpr size_t kMaxKeyLength = 1024;

void CheckKey(const std::string& key) {
  if (key.empty() || key.size() > kMaxKeyLength || key.find('\0') != std::string::npos) {
    throw Error(ErrorKind::kInvalidArgument, "invalid snapshot key (empty, NUL or over " +
                                                 std::to_string(kMaxKeyLength) + " bytes)");
  }
}

int64_t Now() { return static_cast<int64_t>(::time(nullptr)); }

SnapshotKind KindFromName(std::string_view name, const std::string& path) {
  if (name == "active") return SnapshotKind::kActive;
  if (name == "view") return SnapshotKind::kView;
  if (name == "committed") return SnapshotKind::kCommitted;
  throw Error(ErrorKind::kInternal,
              "corrupt snapshot metadata " + path + ": kind " + std::string(name));
}

}  // namespace

std::string_view SnapshotKindName(SnapshotKind kind) {
  switch (kind) {
    case SnapshotKind::kActive:
      return "active";
    case SnapshotKind::kView:
      return "view";
    case SnapshotKind::kCommitted:
      return "committed";
  }
  return "unknown";
}

std::string SerializeSnapshotDb(const SnapshotDb& db) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("next_id");
  w.Uint64(db.next_id);
  w.Key("snapshots");
  w.StartObject();
  for (const auto& [key, rec] : db.records) {
    w.Key(key.c_str(), static_cast<rapidjson::SizeType>(key.size()));
    w.StartObject();
    w.Key("id");
    w.String(rec.id.c_str());
    w.Key("link");
    w.String(rec.link.c_str());
    w.Key("parent");
    w.String(rec.info.parent.c_str(), static_cast<rapidjson::SizeType>(rec.info.parent.size()));
    w.Key("kind");
    w.String(std::string(SnapshotKindName(rec.info.kind)).c_str());
    w.Key("created");
    w.Int64(rec.info.created);
    w.Key("updated");
    w.Int64(rec.info.updated);
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

SnapshotDb ParseSnapshotDb(const std::string& json, const std::string& path) {
  auto corrupt = [&](const std::string& what) {
    return Error(ErrorKind::kInternal, "corrupt snapshot metadata " + path + ": " + what);
  };
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) throw corrupt("not a JSON object");
  SnapshotDb db;
  if (!doc.HasMember("next_id") || !doc["next_id"].IsUint64()) throw corrupt("next_id");
  db.next_id = doc["next_id"].GetUint64();
  if (!doc.HasMember("snapshots") || !doc["snapshots"].IsObject()) throw corrupt("snapshots");
  const rapidjson::Value& snapshots = doc["snapshots"];
  // Indexing, not range-for: RapidJSON 1.1's member iterator comparisons are ambiguous under
  // C++20 with clang.
  for (rapidjson::SizeType i = 0; i < snapshots.MemberCount(); ++i) {
    const auto& m = *(snapshots.MemberBegin() + i);
    const auto& v = m.value;
    auto str = [&](const char* field) -> std::string {
      if (!v.IsObject() || !v.HasMember(field) || !v[field].IsString()) throw corrupt(field);
      return std::string(v[field].GetString(), v[field].GetStringLength());
    };
    auto num = [&](const char* field) -> int64_t {
      if (!v.HasMember(field) || !v[field].IsInt64()) throw corrupt(field);
      return v[field].GetInt64();
    };
    SnapshotRecord rec;
    rec.info.name = std::string(m.name.GetString(), m.name.GetStringLength());
    rec.id = str("id");
    rec.link = str("link");
    rec.info.parent = str("parent");
    rec.info.kind = KindFromName(str("kind"), path);
    rec.info.created = num("created");
    rec.info.updated = num("updated");
    db.records.emplace(rec.info.name, std::move(rec));
  }
  return db;
}

LocalSnapshotter::LocalSnapshotter(std::string root) : root_(std::move(root)) {
  MakeDirs(root_ + "/snapshots", 0700);
}

UniqueFd LocalSnapshotter::Lock(bool exclusive) const {
  std::string path = root_ + "/lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) ThrowErrno("open", path);
  while (::flock(fd.get(), exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno != EINTR) ThrowErrno("flock", path);
  }
  return fd;
}

SnapshotDb LocalSnapshotter::Load() const {
  std::string path = root_ + "/metadata.json";
  auto content = ReadFileIfExists(path);
  if (!content) return {};
  return ParseSnapshotDb(*content, path);
}

void LocalSnapshotter::Save(const SnapshotDb& db) const {
  WriteFileAtomic(root_ + "/metadata.json", SerializeSnapshotDb(db), 0600);
}

const SnapshotRecord& LocalSnapshotter::Find(const SnapshotDb& db, const std::string& key) {
  auto it = db.records.find(key);
  if (it == db.records.end()) {
    throw Error(ErrorKind::kNotFound, "snapshot \"" + key + "\" does not exist");
  }
  return it->second;
}

std::vector<const SnapshotRecord*> LocalSnapshotter::Chain(const SnapshotDb& db,
                                                           const std::string& parent) {
  std::vector<const SnapshotRecord*> chain;
  for (std::string p = parent; !p.empty();) {
    const SnapshotRecord& rec = Find(db, p);
    if (rec.info.kind != SnapshotKind::kCommitted) {
      throw Error(ErrorKind::kInvalidArgument, "parent \"" + p + "\" is not committed");
    }
    chain.push_back(&rec);
    if (chain.size() > kMaxLayers) {
      throw Error(ErrorKind::kInvalidArgument,
                  "parent chain deeper than " + std::to_string(kMaxLayers) + " layers");
    }
    p = rec.info.parent;
  }
  return chain;
}

std::vector<Mount> LocalSnapshotter::Create(const std::string& key, const std::string& parent,
                                            SnapshotKind kind) {
  CheckKey(key);
  UniqueFd lock = Lock(true);
  SnapshotDb db = Load();
  if (db.records.count(key)) {
    throw Error(ErrorKind::kAlreadyExists, "snapshot \"" + key + "\" already exists");
  }
  auto chain = WithContext("prepare " + key, [&] { return Chain(db, parent); });
  // One more layer on top of a full chain would pass the limit.
  if (chain.size() + 1 > kMaxLayers) {
    throw Error(ErrorKind::kInvalidArgument,
                "prepare " + key + ": more than " + std::to_string(kMaxLayers) + " layers");
  }
  SnapshotRecord rec;
  rec.id = std::to_string(db.next_id++);
  rec.info = {key, parent, kind, Now(), Now()};
  Rollback undo;
  std::string dir = SnapshotDir(rec.id);
  // A leftover directory from a crash between mkdir and Save is stale: reuse the id.
  RemoveSnapshotDir(dir);
  MakeDirs(dir, 0700);
  undo.Add([this, &rec] { RemoveDirs(rec); });
  WithContext("prepare " + key, [&] { CreateDirs(rec, chain, db); });
  auto mounts = MountsFor(rec, chain);
  db.records.emplace(key, rec);
  Save(db);
  undo.Commit();
  return mounts;
}

std::vector<Mount> LocalSnapshotter::Prepare(const std::string& key, const std::string& parent) {
  return Create(key, parent, SnapshotKind::kActive);
}

std::vector<Mount> LocalSnapshotter::View(const std::string& key, const std::string& parent) {
  return Create(key, parent, SnapshotKind::kView);
}

std::vector<Mount> LocalSnapshotter::Mounts(const std::string& key) const {
  UniqueFd lock = Lock(false);
  SnapshotDb db = Load();
  const SnapshotRecord& rec = Find(db, key);
  if (rec.info.kind == SnapshotKind::kCommitted) {
    throw Error(ErrorKind::kInvalidArgument,
                "snapshot \"" + key + "\" is committed: mount it through View");
  }
  return MountsFor(rec, Chain(db, rec.info.parent));
}

void LocalSnapshotter::Commit(const std::string& name, const std::string& key) {
  CheckKey(name);
  UniqueFd lock = Lock(true);
  SnapshotDb db = Load();
  SnapshotRecord rec = Find(db, key);
  if (rec.info.kind != SnapshotKind::kActive) {
    throw Error(ErrorKind::kInvalidArgument, "commit " + key + ": snapshot is not active");
  }
  if (db.records.count(name)) {
    throw Error(ErrorKind::kAlreadyExists, "commit " + key + ": \"" + name + "\" already exists");
  }
  OnCommit(rec);
  db.records.erase(key);
  rec.info.name = name;
  rec.info.kind = SnapshotKind::kCommitted;
  rec.info.updated = Now();
  db.records.emplace(name, rec);
  Save(db);
}

void LocalSnapshotter::Remove(const std::string& key) {
  UniqueFd lock = Lock(true);
  SnapshotDb db = Load();
  SnapshotRecord rec = Find(db, key);
  for (const auto& [k, other] : db.records) {
    if (other.info.parent == key) {
      throw Error(ErrorKind::kConflict, "remove " + key + ": snapshot \"" + k + "\" is its child");
    }
  }
  // Metadata first: a crash after Save leaves an orphan directory, never a record without
  // its data.
  db.records.erase(key);
  Save(db);
  RemoveDirs(rec);
}

void LocalSnapshotter::RemoveDirs(const SnapshotRecord& rec) {
  RemoveSnapshotDir(SnapshotDir(rec.id));
}

SnapshotInfo LocalSnapshotter::Stat(const std::string& key) const {
  UniqueFd lock = Lock(false);
  return Find(Load(), key).info;
}

void LocalSnapshotter::Walk(const std::function<void(const SnapshotInfo&)>& fn) const {
  SnapshotDb db;
  {
    UniqueFd lock = Lock(false);
    db = Load();
  }
  for (const auto& [key, rec] : db.records) fn(rec.info);
}

SnapshotUsage LocalSnapshotter::Usage(const std::string& key) const {
  SnapshotRecord rec;
  {
    UniqueFd lock = Lock(false);
    rec = Find(Load(), key);
  }
  return TreeUsage(FsDir(rec));
}

std::string LocalSnapshotter::ApplyDir(const std::string& key) const {
  UniqueFd lock = Lock(false);
  SnapshotDb db = Load();
  const SnapshotRecord& rec = Find(db, key);
  if (rec.info.kind != SnapshotKind::kActive) {
    throw Error(ErrorKind::kInvalidArgument, "snapshot \"" + key + "\" is not active");
  }
  return FsDir(rec);
}

std::vector<DiffEntry> LocalSnapshotter::Changes(const std::string& key) const {
  SnapshotDb db;
  {
    UniqueFd lock = Lock(false);
    db = Load();
  }
  const SnapshotRecord& rec = Find(db, key);
  if (rec.info.kind == SnapshotKind::kView) {
    throw Error(ErrorKind::kInvalidArgument,
                "snapshot \"" + key + "\" is a view: it has no changes");
  }
  return WithContext("diff " + key, [&] { return ChangesFor(rec, Chain(db, rec.info.parent)); });
}

size_t LocalSnapshotter::RemoveOrphans() {
  UniqueFd lock = Lock(true);
  SnapshotDb db = Load();
  std::set<std::string> ids;
  for (const auto& [key, rec] : db.records) ids.insert(rec.id);
  size_t removed = 0;
  std::string dir = root_ + "/snapshots";
  for (const std::string& n : ListDirectory(dir, IfMissing::kThrow)) {
    if (ids.count(n)) continue;
    RemoveSnapshotDir(dir + "/" + n);
    removed++;
  }
  return removed + RemoveOrphanLinks();
}

}  // namespace berth::store
