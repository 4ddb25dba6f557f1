// The bodies of the store's fuzz targets, shared by the libFuzzer binaries and the corpus
// replay in the unit suite. Any berth::Error is an accepted outcome; anything else (a crash,
// another exception, a file outside the scratch dir) is a bug.
#pragma once

#include <stdlib.h>

#include <string>
#include <string_view>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/store/archive/apply.h"
#include "runtime/store/image/manifest.h"

namespace berth::store::fuzz {

inline void ApplyOne(std::string_view data) {
  char tmpl[] = "/tmp/berth-test-fuzz.XXXXXX";
  if (!::mkdtemp(tmpl)) return;
  std::string dir = tmpl;
  try {
    MemorySource src(data);
    StreamLimits limits;
    limits.max_uncompressed = 64 << 20;
    LayerStream stream(src, limits, "fuzz");
    ApplyOptions opts;
    opts.style = WhiteoutStyle::kDelete;
    opts.preserve_owners = false;
    ApplyLayer(stream, dir, opts);
    stream.Finish();
  } catch (const Error&) {
  }
  RemoveTree(dir);
}

inline void ManifestOne(std::string_view data) {
  auto guard = [](auto fn) {
    try {
      fn();
    } catch (const Error&) {
    }
  };
  guard([&] { ParseDockerManifest(data); });
  guard([&] { ParseOciIndex(data); });
  guard([&] { ParseOciManifest(data); });
  guard([&] { ImageConfigToJson(ParseImageConfig(data)); });
}

}  // namespace berth::store::fuzz
