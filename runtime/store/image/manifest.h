// The JSON documents of image archives: docker-archive's manifest.json, the OCI index and
// manifest, and the image config. RapidJSON asserts on wrong types, so every value's shape
// is checked before it is read; a bad document is kInvalidArgument naming the document and
// the field ("manifest.json: [0].Layers[1]: want a string").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/store/blob/digest.h"

namespace berth::store {

// Documents and JSON files larger than this are refused before parsing.
constexpr size_t kMaxJsonDocument = 4 << 20;

struct DockerManifestEntry {
  std::string config;                  // member name of the config
  std::vector<std::string> repo_tags;  // may be empty
  std::vector<std::string> layers;     // member names of the layer tars, base first
};
std::vector<DockerManifestEntry> ParseDockerManifest(std::string_view json);

struct OciDescriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::string os, architecture;  // platform, when given
};

// This machine's architecture as OCI platforms name it ("amd64", "arm64"); empty for others.
std::string HostArchitecture();

// "manifests" of an OCI index.
std::vector<OciDescriptor> ParseOciIndex(std::string_view json);

struct OciManifest {
  OciDescriptor config;
  std::vector<OciDescriptor> layers;
};
OciManifest ParseOciManifest(std::string_view json);

bool IsIndexMediaType(std::string_view media_type);
// True for the OCI and Docker layer types we can unpack (tar, tar+gzip, tar+zstd and the
// non-distributable variants); encrypted or unknown layers are refused.
bool IsSupportedLayerMediaType(std::string_view media_type);

struct HistoryEntry {
  std::string created;
  std::string created_by;
  std::string author;
  std::string comment;
  bool empty_layer = false;
};

struct ContainerConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;
  std::string working_dir;
  std::string user;
  std::vector<std::string> exposed_ports;
  std::vector<std::string> volumes;
  std::map<std::string, std::string> labels;
  std::string stop_signal;
};

struct ImageConfig {
  std::string architecture;
  std::string os;
  std::string created;
  ContainerConfig config;
  std::vector<Digest> diff_ids;
  std::vector<HistoryEntry> history;
};
ImageConfig ParseImageConfig(std::string_view json);
// The fields above as a JSON object (used in image records and by `inspect`).
std::string ImageConfigToJson(const ImageConfig& config);

}  // namespace berth::store
