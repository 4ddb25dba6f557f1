// The pure decisions: what is written where, in which order, and which inputs are refused.
#include <gtest/gtest.h>

#include "runtime/cgroup/cgroup.h"
#include "runtime/cgroup/cgroup_internal.h"
#include "runtime/common/error.h"

namespace berth::cgroup {
namespace {

using internal::FileWrite;

// Runs fn, expects an Error of `kind` whose message starts with `prefix`.
template <typename Fn>
void ExpectError(Fn&& fn, ErrorKind kind, const std::string& prefix) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected " << prefix;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u) << e.what();
  }
}

TEST(ConversionTest, CpuSharesToWeightMatchesRuncAndCrun) {
  EXPECT_EQ(CpuSharesToWeight(0), 0u);
  EXPECT_EQ(CpuSharesToWeight(2), 1u);
  EXPECT_EQ(CpuSharesToWeight(1024), 39u);  // the default share
  EXPECT_EQ(CpuSharesToWeight(262144), 10000u);
  EXPECT_EQ(CpuSharesToWeight(1), 1u);  // clamped
  EXPECT_EQ(CpuSharesToWeight(1u << 30), 10000u);
}

TEST(ConversionTest, BlkioWeightToIoWeight) {
  EXPECT_EQ(BlkioWeightToIoWeight(10), 1u);
  EXPECT_EQ(BlkioWeightToIoWeight(1000), 10000u);
  EXPECT_EQ(BlkioWeightToIoWeight(500), 1u + (490u * 9999u) / 990u);
}

TEST(ConversionTest, TicksToNs) {
  long hz = ::sysconf(_SC_CLK_TCK);
  EXPECT_EQ(internal::TicksToNs(static_cast<uint64_t>(hz)), 1'000'000'000u);
}

TEST(PathTest, NormalizeStripsSlashesAndRefusesDotDot) {
  EXPECT_EQ(internal::NormalizeCgroupPath("/berth/c1/"), "berth/c1");
  EXPECT_EQ(internal::NormalizeCgroupPath("berth//c1"), "berth/c1");
  ExpectError([] { internal::NormalizeCgroupPath("berth/../etc"); }, ErrorKind::kInvalidArgument,
              "linux.cgroupsPath");
  ExpectError([] { internal::NormalizeCgroupPath("/"); }, ErrorKind::kInvalidArgument,
              "linux.cgroupsPath");
  ExpectError([] { OpenCgroup(CgroupHost{}, "./x"); }, ErrorKind::kInvalidArgument,
              "linux.cgroupsPath");
}

TEST(DeviceRuleTest, Lines) {
  spec::DeviceRule all;  // deny a *:* rwm
  EXPECT_EQ(internal::DeviceRuleLine(all, 0), "a *:* rwm");
  spec::DeviceRule null{true, "c", 1, 3, "rwm"};
  EXPECT_EQ(internal::DeviceRuleLine(null, 0), "c 1:3 rwm");
  spec::DeviceRule any_minor{true, "b", 8, std::nullopt, "r"};
  EXPECT_EQ(internal::DeviceRuleLine(any_minor, 0), "b 8:* r");
  spec::DeviceRule minus_one{true, "c", 136, -1, "rw"};
  EXPECT_EQ(internal::DeviceRuleLine(minus_one, 0), "c 136:* rw");
}

TEST(DeviceRuleTest, BadRulesNameTheirIndex) {
  spec::DeviceRule bad_type{true, "x", 1, 3, "rwm"};
  ExpectError([&] { internal::DeviceRuleLine(bad_type, 2); }, ErrorKind::kInvalidArgument,
              "linux.resources.devices[2].type");
  spec::DeviceRule bad_access{true, "c", 1, 3, "rwx"};
  ExpectError([&] { internal::DeviceRuleLine(bad_access, 0); }, ErrorKind::kInvalidArgument,
              "linux.resources.devices[0].access");
  spec::DeviceRule bad_major{true, "c", -5, 3, "r"};
  ExpectError([&] { internal::DeviceRuleLine(bad_major, 1); }, ErrorKind::kInvalidArgument,
              "linux.resources.devices[1].major");
}

TEST(DeviceRuleTest, V1WritesFollowSpecOrder) {
  std::vector<spec::DeviceRule> rules = {
      {false, "a", std::nullopt, std::nullopt, "rwm"},
      {true, "c", 1, 3, "rwm"},
      {true, "c", 136, std::nullopt, "rw"},
      {false, "c", 1, 3, "w"},
  };
  std::vector<FileWrite> expected = {
      {"devices.deny", "a *:* rwm"},
      {"devices.allow", "c 1:3 rwm"},
      {"devices.allow", "c 136:* rw"},
      {"devices.deny", "c 1:3 w"},
  };
  EXPECT_EQ(internal::PlanV1DeviceWrites(rules), expected);
}

spec::MemoryResources Mem(std::optional<int64_t> limit, std::optional<int64_t> swap) {
  spec::MemoryResources m;
  m.limit = limit;
  m.swap = swap;
  return m;
}

TEST(V1MemoryPlanTest, RaisingWritesMemswFirst) {
  // current limit 100M; new 200M / 400M: memsw must rise before the limit does.
  auto writes = internal::PlanV1MemoryWrites(Mem(200 << 20, 400 << 20), 100 << 20, true);
  std::vector<FileWrite> expected = {{"memory.memsw.limit_in_bytes", "419430400"},
                                     {"memory.limit_in_bytes", "209715200"}};
  EXPECT_EQ(writes, expected);
}

TEST(V1MemoryPlanTest, LoweringWritesLimitFirst) {
  auto writes = internal::PlanV1MemoryWrites(Mem(50 << 20, 60 << 20), 100 << 20, true);
  std::vector<FileWrite> expected = {{"memory.limit_in_bytes", "52428800"},
                                     {"memory.memsw.limit_in_bytes", "62914560"}};
  EXPECT_EQ(writes, expected);
}

TEST(V1MemoryPlanTest, UnlimitedLimitAlsoLiftsSwap) {
  auto writes = internal::PlanV1MemoryWrites(Mem(-1, std::nullopt), 100 << 20, true);
  std::vector<FileWrite> expected = {{"memory.memsw.limit_in_bytes", "-1"},
                                     {"memory.limit_in_bytes", "-1"}};
  EXPECT_EQ(writes, expected);
  // Without swap accounting there is nothing to lift.
  writes = internal::PlanV1MemoryWrites(Mem(-1, std::nullopt), 100 << 20, false);
  EXPECT_EQ(writes, (std::vector<FileWrite>{{"memory.limit_in_bytes", "-1"}}));
}

TEST(V1MemoryPlanTest, OtherFields) {
  spec::MemoryResources m;
  m.reservation = 1 << 20;
  m.swappiness = 10;
  m.disable_oom_killer = true;
  std::vector<FileWrite> expected = {{"memory.soft_limit_in_bytes", "1048576"},
                                     {"memory.swappiness", "10"},
                                     {"memory.oom_control", "1"}};
  EXPECT_EQ(internal::PlanV1MemoryWrites(m, 0, true), expected);
}

TEST(V1MemoryPlanTest, SwapWithoutAccounting) {
  EXPECT_EQ(internal::PlanV1MemoryWrites(Mem(std::nullopt, -1), 0, false).size(), 0u);
  ExpectError([] { internal::PlanV1MemoryWrites(Mem(1 << 20, 2 << 20), 0, false); },
              ErrorKind::kUnsupported, "linux.resources.memory.swap");
}

TEST(V1MemoryPlanTest, InvalidValuesNameTheField) {
  ExpectError([] { internal::PlanV1MemoryWrites(Mem(-2, std::nullopt), 0, true); },
              ErrorKind::kInvalidArgument, "linux.resources.memory.limit");
  ExpectError([] { internal::PlanV1MemoryWrites(Mem(2 << 20, 1 << 20), 0, true); },
              ErrorKind::kInvalidArgument, "linux.resources.memory.swap");
  spec::MemoryResources m;
  m.swappiness = 101;
  ExpectError([&] { internal::PlanV1MemoryWrites(m, 0, true); }, ErrorKind::kInvalidArgument,
              "linux.resources.memory.swappiness");
}

TEST(V2MemoryPlanTest, SwapIsTheExcessOverMemory) {
  spec::MemoryResources m = Mem(100 << 20, 150 << 20);
  m.reservation = 50 << 20;
  std::vector<FileWrite> expected = {
      {"memory.max", "104857600"}, {"memory.low", "52428800"}, {"memory.swap.max", "52428800"}};
  EXPECT_EQ(internal::PlanV2MemoryWrites(m, true), expected);
  expected = {{"memory.max", "max"}, {"memory.swap.max", "max"}};
  EXPECT_EQ(internal::PlanV2MemoryWrites(Mem(-1, -1), true), expected);
  expected = {{"memory.max", "1048576"}, {"memory.swap.max", "0"}};
  EXPECT_EQ(internal::PlanV2MemoryWrites(Mem(1 << 20, 1 << 20), true), expected);
}

TEST(V2MemoryPlanTest, Refusals) {
  ExpectError([] { internal::PlanV2MemoryWrites(Mem(std::nullopt, 1 << 20), true); },
              ErrorKind::kInvalidArgument, "linux.resources.memory.swap");
  ExpectError([] { internal::PlanV2MemoryWrites(Mem(2 << 20, 1 << 20), true); },
              ErrorKind::kInvalidArgument, "linux.resources.memory.swap");
  ExpectError([] { internal::PlanV2MemoryWrites(Mem(1 << 20, 2 << 20), false); },
              ErrorKind::kUnsupported, "linux.resources.memory.swap");
  ExpectError([] { internal::PlanV2MemoryWrites(Mem(-7, std::nullopt), true); },
              ErrorKind::kInvalidArgument, "linux.resources.memory.limit");
}

TEST(V2CpuMaxPlanTest, QuotaPeriodCombinations) {
  spec::CpuResources c;
  EXPECT_EQ(internal::PlanV2CpuMax(c, "max 100000"), std::nullopt);
  c.quota = 50000;
  c.period = 100000;
  EXPECT_EQ(internal::PlanV2CpuMax(c, ""), "50000 100000");
  c.quota = -1;
  EXPECT_EQ(internal::PlanV2CpuMax(c, ""), "max 100000");
  c.period.reset();
  c.quota = 20000;
  EXPECT_EQ(internal::PlanV2CpuMax(c, "max 100000"), "20000");
  c.quota.reset();
  c.period = 50000;
  EXPECT_EQ(internal::PlanV2CpuMax(c, "30000 100000"), "30000 50000");
  c.quota = -3;
  ExpectError([&] { internal::PlanV2CpuMax(c, ""); }, ErrorKind::kInvalidArgument,
              "linux.resources.cpu.quota");
}

TEST(V2IoMaxPlanTest, OneLinePerDevice) {
  spec::BlockIoResources io;
  io.throttle_read_bps_device = {{8, 0, 1048576}};
  io.throttle_write_iops_device = {{8, 0, 100}, {8, 16, 0}};
  io.throttle_write_bps_device = {{8, 16, 2048}};
  std::vector<std::string> expected = {"8:0 rbps=1048576 wiops=100", "8:16 wbps=2048 wiops=max"};
  EXPECT_EQ(internal::PlanV2IoMax(io), expected);
}

TEST(UnifiedKeyTest, OnlyPlainFileNames) {
  internal::ValidateUnifiedKey("memory.high");
  for (const char* bad : {"", ".", "..", "../memory.max", "a/b", "/etc/passwd"}) {
    ExpectError([&] { internal::ValidateUnifiedKey(bad); }, ErrorKind::kInvalidArgument,
                "linux.resources.unified");
  }
}

TEST(ParseTest, KeyValuesAndNumbers) {
  auto kv = internal::ParseKeyValues("user 10\nsystem 20\nbad\nx notanumber\n");
  EXPECT_EQ(kv.size(), 2u);
  EXPECT_EQ(kv["user"], 10u);
  EXPECT_EQ(kv["system"], 20u);
  EXPECT_EQ(internal::ParseUint("42\n"), 42u);
  EXPECT_EQ(internal::ParseUint("max"), std::nullopt);
  EXPECT_EQ(internal::ParseUint(""), std::nullopt);
}

}  // namespace
}  // namespace berth::cgroup
