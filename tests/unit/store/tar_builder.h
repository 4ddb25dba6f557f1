// Builds tar archives in memory with libarchive's writer, for tests: layers (with hostile
// members), docker-archives and OCI layouts. Header-only so the integration suite can use
// it too.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "runtime/common/file_util.h"
#include "runtime/store/blob/digest.h"

namespace berth::store::testing {

enum class Compression { kNone, kGzip, kZstd };

struct TarMember {
  std::string path;
  mode_t type = S_IFREG;
  mode_t perm = 0644;
  std::string data;      // file content
  std::string link;      // symlink target
  std::string hardlink;  // hardlink target
  int64_t uid = 0, gid = 0;
  int64_t mtime = 1700000000;
  dev_t rdev = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
  int64_t declared_size = -1;  // override the size in the header
};

class TarBuilder {
 public:
  TarBuilder& File(std::string path, std::string data, mode_t perm = 0644) {
    TarMember m;
    m.path = std::move(path);
    m.data = std::move(data);
    m.perm = perm;
    members_.push_back(std::move(m));
    return *this;
  }
  TarBuilder& Dir(std::string path, mode_t perm = 0755) {
    TarMember m;
    m.path = std::move(path);
    m.type = S_IFDIR;
    m.perm = perm;
    members_.push_back(std::move(m));
    return *this;
  }
  TarBuilder& Symlink(std::string path, std::string target) {
    TarMember m;
    m.path = std::move(path);
    m.type = S_IFLNK;
    m.perm = 0777;
    m.link = std::move(target);
    members_.push_back(std::move(m));
    return *this;
  }
  TarBuilder& Hardlink(std::string path, std::string target) {
    TarMember m;
    m.path = std::move(path);
    m.hardlink = std::move(target);
    members_.push_back(std::move(m));
    return *this;
  }
  TarBuilder& Device(std::string path, mode_t type, dev_t rdev) {
    TarMember m;
    m.path = std::move(path);
    m.type = type;
    m.rdev = rdev;
    members_.push_back(std::move(m));
    return *this;
  }
  TarBuilder& Add(TarMember m) {
    members_.push_back(std::move(m));
    return *this;
  }
  TarMember& last() { return members_.back(); }

  std::string Build(Compression c = Compression::kNone) const {
    // Non-ASCII names need a UTF-8 locale for libarchive's pax writer.
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    locale_t old = uselocale(utf8);
    struct archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (c == Compression::kGzip) archive_write_add_filter_gzip(a);
    if (c == Compression::kZstd) archive_write_add_filter_zstd(a);
    archive_write_set_bytes_in_last_block(a, 1);
    std::string out;
    archive_write_open(a, &out, nullptr, &Append, nullptr);
    for (const TarMember& m : members_) {
      struct archive_entry* e = archive_entry_new();
      archive_entry_set_pathname(e, m.path.c_str());
      archive_entry_set_uid(e, m.uid);
      archive_entry_set_gid(e, m.gid);
      archive_entry_set_mtime(e, m.mtime, 0);
      archive_entry_set_perm(e, m.perm);
      for (const auto& [k, v] : m.xattrs)
        archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
      if (!m.hardlink.empty()) {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, m.hardlink.c_str());
        archive_entry_set_size(e, 0);
      } else {
        archive_entry_set_filetype(e, m.type);
        if (m.type == S_IFLNK) archive_entry_set_symlink(e, m.link.c_str());
        if (m.type == S_IFCHR || m.type == S_IFBLK) archive_entry_set_rdev(e, m.rdev);
        archive_entry_set_size(e, m.type == S_IFREG ? static_cast<int64_t>(m.data.size()) : 0);
        if (m.declared_size >= 0) archive_entry_set_size(e, m.declared_size);
      }
      if (archive_write_header(a, e) != ARCHIVE_OK) {
        std::string err = archive_error_string(a);
        archive_entry_free(e);
        archive_write_free(a);
        uselocale(old);
        freelocale(utf8);
        throw std::runtime_error("tar builder: " + err);
      }
      if (m.type == S_IFREG && m.hardlink.empty() && !m.data.empty()) {
        archive_write_data(a, m.data.data(), m.data.size());
      }
      archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    uselocale(old);
    freelocale(utf8);
    return out;
  }

 private:
  static la_ssize_t Append(struct archive*, void* data, const void* buf, size_t n) {
    static_cast<std::string*>(data)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
  std::vector<TarMember> members_;
};

// Rewrites the size field of the ustar header at `offset` (base-256, as GNU tar does for
// big sizes) and fixes the header checksum: a member that declares more than it holds.
inline std::string PatchSize(std::string tar, size_t offset, uint64_t size) {
  char* h = tar.data() + offset;
  h[124] = static_cast<char>(0x80);
  for (int i = 0; i < 11; ++i) h[124 + 11 - i] = static_cast<char>((size >> (8 * i)) & 0xff);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < 512; ++i) sum += static_cast<unsigned char>(h[i]);
  snprintf(h + 148, 8, "%06o", sum);
  h[155] = ' ';
  return tar;
}

inline std::string Sha(const std::string& data) { return Digest::Of(data).str(); }
inline std::string Hex(const std::string& data) { return Digest::Of(data).hex(); }

// An image config naming these uncompressed layers.
inline std::string ConfigFor(const std::vector<std::string>& uncompressed_layers,
                             const std::string& extra_config = R"("Cmd":["/bin/sh"])") {
  std::string ids;
  for (const auto& l : uncompressed_layers) ids += (ids.empty() ? "\"" : ",\"") + Sha(l) + "\"";
  return R"({"architecture":"amd64","os":"linux","config":{)" + extra_config +
         R"(},"rootfs":{"type":"layers","diff_ids":[)" + ids +
         R"(]},"history":[{"created_by":"test"}]})";
}

// `docker save` layout: <n>/layer.tar, <config hex>.json, manifest.json.
inline std::string DockerArchive(const std::vector<std::string>& layers, const std::string& tag,
                                 std::string config = "") {
  if (config.empty()) config = ConfigFor(layers);
  TarBuilder t;
  std::string names;
  for (size_t i = 0; i < layers.size(); ++i) {
    std::string member = "layer" + std::to_string(i) + "/layer.tar";
    t.File(member, layers[i]);
    names += (i ? ",\"" : "\"") + member + "\"";
  }
  t.File(Hex(config) + ".json", config);
  t.File("manifest.json", "[{\"Config\":\"" + Hex(config) + ".json\",\"RepoTags\":[\"" + tag +
                              "\"],\"Layers\":[" + names + "]}]");
  return t.Build();
}

struct OciBlob {
  std::string media_type;
  std::string data;
};

// An OCI layout as (path, content) files; layers given already compressed with their type.
inline std::vector<std::pair<std::string, std::string>> OciLayout(
    const std::vector<OciBlob>& layers, const std::string& config, const std::string& ref) {
  std::vector<std::pair<std::string, std::string>> files;
  std::string descs;
  for (const auto& l : layers) {
    files.emplace_back("blobs/sha256/" + Hex(l.data), l.data);
    descs += std::string(descs.empty() ? "" : ",") + R"({"mediaType":")" + l.media_type +
             R"(","digest":")" + Sha(l.data) + R"(","size":)" + std::to_string(l.data.size()) + "}";
  }
  files.emplace_back("blobs/sha256/" + Hex(config), config);
  std::string manifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
      Sha(config) + R"(","size":)" + std::to_string(config.size()) + R"(},"layers":[)" + descs +
      "]}";
  files.emplace_back("blobs/sha256/" + Hex(manifest), manifest);
  files.emplace_back("oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  files.emplace_back(
      "index.json",
      R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
          Sha(manifest) + R"(","size":)" + std::to_string(manifest.size()) +
          R"(,"annotations":{"org.opencontainers.image.ref.name":")" + ref + R"("}}]})");
  return files;
}

inline void WriteTree(const std::string& dir,
                      const std::vector<std::pair<std::string, std::string>>& files) {
  MakeDirs(dir);
  for (const auto& [path, data] : files) {
    auto slash = path.rfind('/');
    if (slash != std::string::npos) MakeDirs(dir + "/" + path.substr(0, slash));
    WriteFileAtomic(dir + "/" + path, data);
  }
}

inline std::string TarOf(const std::vector<std::pair<std::string, std::string>>& files) {
  TarBuilder t;
  for (const auto& [path, data] : files) t.File(path, data);
  return t.Build();
}

inline std::string Compress(const std::string& tar, Compression c) {
  // Re-wrap an uncompressed stream with a filter by writing it as a raw archive.
  struct archive* a = archive_write_new();
  archive_write_set_format_raw(a);
  archive_write_set_bytes_in_last_block(a, 1);
  if (c == Compression::kGzip) archive_write_add_filter_gzip(a);
  if (c == Compression::kZstd) archive_write_add_filter_zstd(a);
  std::string out;
  archive_write_open(
      a, &out, nullptr,
      [](struct archive*, void* d, const void* b, size_t n) -> la_ssize_t {
        static_cast<std::string*>(d)->append(static_cast<const char*>(b), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_pathname(e, "data");
  archive_entry_set_size(e, static_cast<int64_t>(tar.size()));
  archive_write_header(a, e);
  archive_write_data(a, tar.data(), tar.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

}  // namespace berth::store::testing
