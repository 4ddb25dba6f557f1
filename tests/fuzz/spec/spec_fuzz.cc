// libFuzzer target for the config.json parser. Any input must either parse or throw
// berth::Error; a crash, a sanitizer report, another exception type, or a spec that does not
// survive SerializeSpec -> ParseSpec unchanged is a bug.
//
// Built with -DBERTH_FUZZ=ON (clang): ninja berth_fuzz_spec; its corpus (tests/fuzz/spec/corpus)
// is replayed by berth_unit_spec (FuzzCorpusTest) in the normal suite. By hand:
//   build-fuzz/tests/berth_fuzz_spec -max_total_time=60 -max_len=65536 tests/fuzz/spec/corpus
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/common/error.h"
#include "runtime/spec/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  berth::spec::Spec spec;
  try {
    spec = berth::spec::ParseSpec(input);
  } catch (const berth::Error&) {
    return 0;
  }
  // What parsed must serialise and read back to the same text.
  std::string once = berth::spec::SerializeSpec(spec);
  std::string twice;
  try {
    twice = berth::spec::SerializeSpec(berth::spec::ParseSpec(once));
  } catch (const berth::Error&) {
    std::abort();  // we wrote something we cannot read
  }
  if (once != twice) std::abort();
  return 0;
}
