#include "driver/server/userns_ranges.h"

#include <pwd.h>

#include <charconv>
#include <set>
#include <sstream>

#include "driver/server/json_util.h"
#include "runtime/common/error.h"
#include "runtime/common/file_util.h"

namespace berth::server {
namespace {

constexpr const char* kIdmapFile = "idmap.json";

bool ToU64(std::string_view s, uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

uint32_t U32(const rapidjson::Value& v, const char* field, const std::string& path) {
  auto x = OptInt(v, field, path + "." + field);
  if (!x || *x < 0 || *x > int64_t{0xffffffff}) {
    throw Error(ErrorKind::kInvalidArgument, path + "." + field + ": want a 32-bit id");
  }
  return static_cast<uint32_t>(*x);
}

}  // namespace

SubidRange FindSubidRange(const std::string& text, const std::string& user,
                          const std::string& uid_text, const std::string& file) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find(':');
    if (a == std::string::npos) continue;
    size_t b = line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string name = line.substr(0, a);
    if (name != user && (uid_text.empty() || name != uid_text)) continue;
    SubidRange r;
    if (!ToU64(std::string_view(line).substr(a + 1, b - a - 1), r.start) ||
        !ToU64(std::string_view(line).substr(b + 1), r.count) || r.count == 0 ||
        r.start + r.count > (uint64_t{1} << 32) - 1) {
      throw Error(ErrorKind::kInvalidArgument, file + ": malformed line \"" + line + "\"");
    }
    return r;
  }
  throw Error(ErrorKind::kNotFound, file + ": no subordinate range for user \"" + user +
                                        "\" (add one: usermod --add-subuids/--add-subgids, "
                                        "or set [security] userns = false)");
}

std::string IdRangeToJson(const IdRange& r) {
  return "{\"uid\": " + std::to_string(r.uid) + ", \"gid\": " + std::to_string(r.gid) +
         ", \"size\": " + std::to_string(r.size) + "}\n";
}

IdRange IdRangeFromJson(const std::string& json, const std::string& path) {
  rapidjson::Document d = ParseJsonObject(json, path);
  IdRange r;
  r.uid = U32(d, "uid", path);
  r.gid = U32(d, "gid", path);
  r.size = U32(d, "size", path);
  if (r.size == 0) throw Error(ErrorKind::kInvalidArgument, path + ".size: want > 0");
  return r;
}

UsernsRanges::UsernsRanges(const std::string& subid_dir, const std::string& user,
                           uint32_t slot_size, std::string instances_dir)
    : slot_size_(slot_size), instances_dir_(std::move(instances_dir)) {
  std::string uid_text;
  if (struct passwd* pw = ::getpwnam(user.c_str())) uid_text = std::to_string(pw->pw_uid);
  const std::string subuid = subid_dir + "/subuid", subgid = subid_dir + "/subgid";
  auto read = [](const std::string& f) {
    auto t = ReadFileIfExists(f);
    return t ? *t : std::string();
  };
  uids_ = FindSubidRange(read(subuid), user, uid_text, subuid);
  gids_ = FindSubidRange(read(subgid), user, uid_text, subgid);
  slots_ = static_cast<size_t>(std::min(uids_.count, gids_.count) / slot_size_);
  if (slots_ == 0) {
    throw Error(ErrorKind::kInvalidArgument,
                subuid + ": the range of \"" + user + "\" holds fewer than " +
                    std::to_string(slot_size_) + " ids ([security] userns_range_size)");
  }
}

std::optional<IdRange> UsernsRanges::Load(const std::string& instance_dir) {
  const std::string path = JoinPath(instance_dir, kIdmapFile);
  auto text = ReadFileIfExists(path);
  if (!text) return std::nullopt;
  return IdRangeFromJson(*text, path);
}

IdRange UsernsRanges::RangeOfSlot(size_t slot) const {
  IdRange r;
  r.uid = static_cast<uint32_t>(uids_.start + slot * slot_size_);
  r.gid = static_cast<uint32_t>(gids_.start + slot * slot_size_);
  r.size = slot_size_;
  return r;
}

std::vector<bool> UsernsRanges::ScanTakenSlots() const {
  std::vector<bool> taken(slots_, false);
  for (const auto& name : ListDirectory(instances_dir_)) {
    if (name[0] == '.') continue;
    try {
      auto r = Load(JoinPath(instances_dir_, name));
      if (!r || r->uid < uids_.start) continue;
      const uint64_t slot = (r->uid - uids_.start) / slot_size_;
      if (slot < slots_) taken[slot] = true;
    } catch (const Error&) {
      // Written atomically, so never torn; a file that does not parse belongs to a
      // record Recover() cannot load either, and the instance is unusable anyway.
    }
  }
  return taken;
}

std::optional<IdRange> UsernsRanges::Peek() {
  std::lock_guard lock(mu_);
  if (taken_.empty()) taken_ = ScanTakenSlots();  // as the first Allocate would
  for (size_t slot = 0; slot < taken_.size(); ++slot) {
    if (!taken_[slot]) return RangeOfSlot(slot);
  }
  return std::nullopt;
}

IdRange UsernsRanges::Allocate(const std::string& instance_dir) {
  std::lock_guard lock(mu_);
  // Reading every instance's idmap.json on each spawn cost ~13 us an instance (4.6 ms at
  // 300). The records are read once; our own allocations keep the set current. A delete
  // frees its slot only on disk (its directory goes), so freed slots are found by a new
  // scan when the known-free ones run out: the ids of a deleted instance go to a new one
  // as late as possible, not at once.
  auto first_free = [this] {
    for (size_t slot = 0; slot < slots_; ++slot) {
      if (!taken_[slot]) return std::optional<size_t>(slot);
    }
    return std::optional<size_t>();
  };
  std::optional<size_t> slot;
  if (!taken_.empty()) slot = first_free();
  if (!slot) {
    taken_ = ScanTakenSlots();
    slot = first_free();
  }
  if (!slot) {
    throw Error(ErrorKind::kResourceExhausted,
                "no free user namespace range: all " + std::to_string(slots_) +
                    " slots of the berth subordinate range are in use");
  }
  IdRange r = RangeOfSlot(*slot);
  WriteFileAtomic(JoinPath(instance_dir, kIdmapFile), IdRangeToJson(r), 0600);
  taken_[*slot] = true;
  return r;
}

}  // namespace berth::server
