// libFuzzer: a layer blob (any compression) extracted into a scratch directory.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/store/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  berth::store::fuzz::ApplyOne({reinterpret_cast<const char*>(data), size});
  return 0;
}
