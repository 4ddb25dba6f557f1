// Per-instance uid/gid ranges for user namespaces, cut from the subordinate ranges that
// /etc/subuid and /etc/subgid give the `berth` user. Each instance gets its own slot (see
// docs/threat-model.md for why not one shared range); the slot is written to
// <instance dir>/idmap.json before anything runs with it, so it survives berthd restarts
// and is released when the instance directory goes away on delete.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/spec/spec.h"

namespace berth::server {

struct SubidRange {
  uint64_t start = 0;
  uint64_t count = 0;
};

// The first range of `user` (by name, or by its uid given as `uid_text`) in subuid/subgid
// text ("name:start:count" lines). kNotFound when there is none.
SubidRange FindSubidRange(const std::string& text, const std::string& user,
                          const std::string& uid_text, const std::string& file);

struct IdRange {
  uint32_t uid = 0;  // host uid that root inside maps to
  uint32_t gid = 0;
  uint32_t size = 0;
  std::vector<spec::IdMapping> UidMappings() const { return {{0, uid, size}}; }
  std::vector<spec::IdMapping> GidMappings() const { return {{0, gid, size}}; }
  friend bool operator==(const IdRange&, const IdRange&) = default;
};

std::string IdRangeToJson(const IdRange& r);
IdRange IdRangeFromJson(const std::string& json, const std::string& path);

class UsernsRanges {
 public:
  // Reads <subid_dir>/subuid and subgid for `user`; kNotFound (naming the file and the
  // fix) when the user has no range, kInvalidArgument when it is smaller than one slot.
  UsernsRanges(const std::string& subid_dir, const std::string& user, uint32_t slot_size,
               std::string instances_dir);

  // Picks a slot no instance directory's idmap.json holds and writes it into
  // `instance_dir`/idmap.json (fsynced): the lowest one not taken since the records were
  // last read, which happens at the first call and whenever those run out (so a deleted
  // instance's slot is reused only then). kResourceExhausted when every slot is taken.
  IdRange Allocate(const std::string& instance_dir);
  // The instance's slot, or nullopt when it has none (made without user namespaces).
  static std::optional<IdRange> Load(const std::string& instance_dir);
  // The slot the next Allocate gives unless the known-free ones have run out (then it
  // reads the records again): what the spawner makes a shell for. nullopt: none known
  // free. Reads the records when nothing has read them yet, as Allocate does.
  std::optional<IdRange> Peek();

  size_t slots() const { return slots_; }
  const SubidRange& uids() const { return uids_; }
  const SubidRange& gids() const { return gids_; }

 private:
  SubidRange uids_, gids_;
  uint32_t slot_size_;
  size_t slots_;
  std::vector<bool> ScanTakenSlots() const;
  IdRange RangeOfSlot(size_t slot) const;

  std::string instances_dir_;
  std::mutex mu_;            // a scan and the write of its result are one step
  std::vector<bool> taken_;  // empty until the first Allocate
};

}  // namespace berth::server
