#include <linux/capability.h>
#include <sys/resource.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/common/error.h"
#include "runtime/security/security.h"

namespace berth::security {
namespace {

using ::testing::HasSubstr;

spec::Rlimit Limit(std::string type, uint64_t soft, uint64_t hard) {
  spec::Rlimit limit;
  limit.type = std::move(type);
  limit.soft = soft;
  limit.hard = hard;
  return limit;
}

TEST(PrepareRlimits, ResolvesEveryName) {
  const std::pair<const char*, int> kAll[] = {
      {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_CORE", RLIMIT_CORE},
      {"RLIMIT_CPU", RLIMIT_CPU},
      {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
      {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_NPROC", RLIMIT_NPROC},
      {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
      {"RLIMIT_RTTIME", RLIMIT_RTTIME},
      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_STACK", RLIMIT_STACK},
  };
  for (const auto& [name, resource] : kAll) {
    // Zero never exceeds the caller's hard limit.
    std::vector<PreparedRlimit> prepared = PrepareRlimits({Limit(name, 0, 0)});
    ASSERT_EQ(prepared.size(), 1u);
    EXPECT_EQ(prepared[0].resource, resource) << name;
  }
}

TEST(PrepareRlimits, KeepsValuesAndOrder) {
  std::vector<PreparedRlimit> prepared =
      PrepareRlimits({Limit("RLIMIT_NOFILE", 100, 200), Limit("RLIMIT_CORE", 0, 0)});
  ASSERT_EQ(prepared.size(), 2u);
  EXPECT_EQ(prepared[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(prepared[0].soft, 100u);
  EXPECT_EQ(prepared[0].hard, 200u);
  EXPECT_EQ(prepared[1].resource, RLIMIT_CORE);
}

TEST(PrepareRlimits, UnknownTypeNamesTheField) {
  try {
    PrepareRlimits({Limit("RLIMIT_NOFILE", 1, 1), Limit("RLIMIT_BOGUS", 1, 1)});
    FAIL() << "RLIMIT_BOGUS was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_THAT(e.message(), HasSubstr("process.rlimits[1].type"));
    EXPECT_THAT(e.message(), HasSubstr("RLIMIT_BOGUS"));
  }
}

TEST(PrepareRlimits, SoftAboveHardIsRejected) {
  try {
    PrepareRlimits({Limit("RLIMIT_NOFILE", 300, 200)});
    FAIL() << "soft > hard was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_THAT(e.message(), HasSubstr("process.rlimits[0]"));
    EXPECT_THAT(e.message(), HasSubstr("300"));
  }
}

TEST(PrepareRlimits, HardAboveCallersLimitWithoutCapSysResourceIsRejected) {
  if (HasEffectiveCapability(CAP_SYS_RESOURCE)) {
    GTEST_SKIP() << "CAP_SYS_RESOURCE held: any hard limit may be set";
  }
  rlimit current{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &current), 0);
  if (current.rlim_max == RLIM_INFINITY) GTEST_SKIP() << "nofile hard limit is unlimited";
  uint64_t requested = current.rlim_max + 1;
  try {
    PrepareRlimits({Limit("RLIMIT_NOFILE", 1024, requested)});
    FAIL() << "hard limit above ours was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_THAT(e.message(), HasSubstr("process.rlimits[0].hard"));
    EXPECT_THAT(e.message(), HasSubstr(std::to_string(requested)));
    EXPECT_THAT(e.message(), HasSubstr(std::to_string(current.rlim_max)));
  }
  // Exactly our hard limit is fine.
  EXPECT_NO_THROW(PrepareRlimits({Limit("RLIMIT_NOFILE", 1024, current.rlim_max)}));
}

}  // namespace
}  // namespace berth::security
