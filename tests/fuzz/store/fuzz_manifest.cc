// libFuzzer: manifest.json, OCI index/manifest and image config parsers.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/store/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  berth::store::fuzz::ManifestOne({reinterpret_cast<const char*>(data), size});
  return 0;
}
