#include "runtime/network/ipam.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/unique_fd.h"

namespace berth::net {
namespace {

constexpr const char* kLastFile = ".last";
constexpr const char* kSubnetFile = ".subnet";

void ValidateOwner(const std::string& owner) {
  if (owner.empty() || owner.size() > 256 || owner.find('\n') != std::string::npos ||
      owner.find('\0') != std::string::npos) {
    throw Error(ErrorKind::kInvalidArgument, "IPAM owner \"" + owner + "\" is not valid");
  }
}

void FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) ThrowErrno("open", dir);
  if (::fsync(fd.get()) != 0) ThrowErrno("fsync", dir);
}

// Any lease file, of whatever subnet: a state dir must not mix two subnets.
bool HasAnyLease(const std::string& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) ThrowErrno("opendir", dir);
  while (dirent* entry = ::readdir(d.get())) {
    if (entry->d_name[0] == '.') continue;
    try {
      Ipv4Address::Parse(entry->d_name);
      return true;
    } catch (const Error&) {
    }
  }
  return false;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Ipam::Ipam(std::string state_dir, Ipv4Subnet subnet, Ipv4Address gateway)
    : dir_(std::move(state_dir)), subnet_(subnet), gateway_(gateway) {
  if (subnet_.prefix_len > 29) {
    throw Error(ErrorKind::kInvalidArgument,
                "IPAM subnet " + subnet_.ToString() + " is too small (at most /29)");
  }
  if (!subnet_.Contains(gateway_) || gateway_ == subnet_.network ||
      gateway_ == subnet_.Broadcast()) {
    throw Error(ErrorKind::kInvalidArgument, "IPAM gateway " + gateway_.ToString() +
                                                 " is not a host address of " + subnet_.ToString());
  }
  MakeDirs(dir_, 0700);
  std::string subnet_path = JoinPath(dir_, kSubnetFile);
  auto recorded = ReadFileIfExists(subnet_path);
  if (recorded && Trim(*recorded) != subnet_.ToString() && HasAnyLease(dir_)) {
    throw Error(ErrorKind::kConflict, "IPAM state " + dir_ + " holds leases of subnet " +
                                          Trim(*recorded) + ", not " + subnet_.ToString());
  }
  if (!recorded || Trim(*recorded) != subnet_.ToString()) {
    WriteFileAtomic(subnet_path, subnet_.ToString() + "\n", 0600);
  }
}

bool Ipam::IsReserved(Ipv4Address address) const {
  return address == subnet_.network || address == subnet_.Broadcast() || address == gateway_;
}

std::string Ipam::LeasePath(Ipv4Address address) const {
  return JoinPath(dir_, address.ToString());
}

std::vector<Lease> Ipam::ListLocked() const {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(dir_.c_str()), ::closedir);
  if (!dir) ThrowErrno("opendir", dir_);
  std::vector<Lease> leases;
  while (dirent* entry = ::readdir(dir.get())) {
    std::string name = entry->d_name;
    if (name.empty() || name[0] == '.') continue;
    Ipv4Address address;
    try {
      address = Ipv4Address::Parse(name);
    } catch (const Error&) {
      continue;  // not ours (an editor's backup, say): never a lease
    }
    if (!subnet_.Contains(address)) continue;
    auto content = ReadFileIfExists(JoinPath(dir_, name));
    if (!content) continue;  // released meanwhile
    leases.push_back(Lease{address, Trim(*content)});
  }
  std::sort(leases.begin(), leases.end(),
            [](const Lease& a, const Lease& b) { return a.address < b.address; });
  return leases;
}

std::vector<Lease> Ipam::List() const {
  std::lock_guard lock(mu_);
  return ListLocked();
}

std::optional<Ipv4Address> Ipam::Find(const std::string& owner) const {
  std::lock_guard lock(mu_);
  for (const auto& lease : ListLocked()) {
    if (lease.owner == owner) return lease.address;
  }
  return std::nullopt;
}

bool Ipam::TryTake(Ipv4Address address, const std::string& owner) {
  std::string path = LeasePath(address);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) {
    if (errno == EEXIST) return false;
    ThrowErrno("open", path);
  }
  std::string content = owner + "\n";
  // From here the address is ours; a failure to record the owner must give it back.
  try {
    if (::write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
      ThrowErrno("write", path);
    }
    if (::fsync(fd.get()) != 0) ThrowErrno("fsync", path);
    FsyncDir(dir_);
  } catch (...) {
    ::unlink(path.c_str());
    throw;
  }
  return true;
}

void Ipam::RememberLast(Ipv4Address address) {
  // Only a hint: losing it in a crash merely restarts the scan from the bottom.
  WriteFileAtomic(JoinPath(dir_, kLastFile), address.ToString() + "\n", 0600,
                  Durability::kAtomicOnly);
}

std::optional<Ipv4Address> Ipam::LoadLast() const {
  auto text = ReadFileIfExists(JoinPath(dir_, kLastFile));
  if (!text) return std::nullopt;
  try {
    auto address = Ipv4Address::Parse(Trim(*text));
    if (subnet_.Contains(address)) return address;
  } catch (const Error&) {
  }
  return std::nullopt;
}

Ipv4Address Ipam::Allocate(const std::string& owner) {
  ValidateOwner(owner);
  std::lock_guard lock(mu_);
  return WithContext("allocate an address in " + subnet_.ToString() + " for " + owner, [&] {
    std::set<Ipv4Address> used;
    for (const auto& lease : ListLocked()) {
      if (lease.owner == owner) return lease.address;
      used.insert(lease.address);
    }
    uint64_t size = subnet_.Size();
    uint64_t start = 1;
    if (auto last = LoadLast()) start = (last->value - subnet_.network.value) + 1;
    for (uint64_t i = 0; i < size; ++i) {
      uint64_t offset = (start + i) % size;
      Ipv4Address candidate = subnet_.At(static_cast<uint32_t>(offset));
      if (IsReserved(candidate) || used.count(candidate)) continue;
      if (TryTake(candidate, owner)) {
        RememberLast(candidate);
        return candidate;
      }
    }
    throw Error(ErrorKind::kResourceExhausted, "no free address left");
  });
}

bool Ipam::Release(Ipv4Address address) {
  std::lock_guard lock(mu_);
  std::string path = LeasePath(address);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return false;
    ThrowErrno("unlink", path);
  }
  FsyncDir(dir_);
  return true;
}

size_t Ipam::ReleaseOwner(const std::string& owner) {
  size_t freed = 0;
  for (const auto& lease : List()) {
    if (lease.owner == owner && Release(lease.address)) ++freed;
  }
  return freed;
}

std::vector<Lease> Ipam::Reconcile(const std::set<std::string>& live) {
  std::vector<Lease> freed;
  for (const auto& lease : List()) {
    if (live.count(lease.owner)) continue;
    if (Release(lease.address)) freed.push_back(lease);
  }
  return freed;
}

}  // namespace berth::net
