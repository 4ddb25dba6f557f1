// The eBPF device filter, run in a small interpreter of the instructions it emits, so the
// tests check what the program decides, not just how it looks.
#include "runtime/cgroup/device_filter.h"

#include <gtest/gtest.h>

#include "runtime/common/error.h"

namespace berth::cgroup {
namespace {

constexpr uint32_t kChar = BPF_DEVCG_DEV_CHAR, kBlock = BPF_DEVCG_DEV_BLOCK;
constexpr uint32_t kR = BPF_DEVCG_ACC_READ, kW = BPF_DEVCG_ACC_WRITE, kM = BPF_DEVCG_ACC_MKNOD;

// Executes the subset of eBPF the generator uses; fails the test on anything else.
int Exec(const std::vector<bpf_insn>& prog, uint32_t type, uint32_t access, uint32_t major,
         uint32_t minor) {
  uint32_t ctx[3] = {(access << 16) | type, major, minor};
  uint64_t reg[11] = {};
  size_t pc = 0;
  for (int steps = 0; steps < 10000 && pc < prog.size(); ++steps) {
    const bpf_insn& i = prog[pc++];
    uint8_t cls = BPF_CLASS(i.code);
    if (i.code == (BPF_LDX | BPF_MEM | BPF_W)) {
      EXPECT_EQ(i.src_reg, BPF_REG_1);
      EXPECT_TRUE(i.off == 0 || i.off == 4 || i.off == 8) << i.off;
      reg[i.dst_reg] = ctx[i.off / 4];
    } else if (cls == BPF_ALU && BPF_SRC(i.code) == BPF_K) {
      uint32_t v = static_cast<uint32_t>(reg[i.dst_reg]);
      uint32_t imm = static_cast<uint32_t>(i.imm);
      switch (BPF_OP(i.code)) {
        case BPF_AND:
          v &= imm;
          break;
        case BPF_RSH:
          v >>= imm;
          break;
        default:
          ADD_FAILURE() << "alu op " << int(i.code);
          return -1;
      }
      reg[i.dst_reg] = v;
    } else if (i.code == (BPF_ALU | BPF_MOV | BPF_X)) {
      reg[i.dst_reg] = static_cast<uint32_t>(reg[i.src_reg]);
    } else if (i.code == (BPF_ALU64 | BPF_MOV | BPF_K)) {
      reg[i.dst_reg] = static_cast<uint64_t>(static_cast<int64_t>(i.imm));
    } else if (cls == BPF_JMP32 && BPF_SRC(i.code) == BPF_K) {
      uint32_t v = static_cast<uint32_t>(reg[i.dst_reg]);
      bool taken = false;
      switch (BPF_OP(i.code)) {
        case BPF_JNE:
          taken = v != static_cast<uint32_t>(i.imm);
          break;
        case BPF_JEQ:
          taken = v == static_cast<uint32_t>(i.imm);
          break;
        default:
          ADD_FAILURE() << "jmp op " << int(i.code);
          return -1;
      }
      if (taken) pc += i.off;
    } else if (i.code == (BPF_JMP | BPF_EXIT)) {
      return static_cast<int>(reg[BPF_REG_0]);
    } else {
      ADD_FAILURE() << "unexpected opcode " << int(i.code);
      return -1;
    }
  }
  ADD_FAILURE() << "ran off the end";
  return -1;
}

spec::DeviceRule Rule(bool allow, std::string type, std::optional<int64_t> major,
                      std::optional<int64_t> minor, std::string access) {
  return spec::DeviceRule{allow, std::move(type), major, minor, std::move(access)};
}

TEST(DeviceFilterTest, NoRulesDeniesEverything) {
  auto prog = BuildDeviceFilter({});
  EXPECT_EQ(Exec(prog, kChar, kR, 1, 3), 0);
  EXPECT_EQ(Exec(prog, kBlock, kM, 8, 0), 0);
}

TEST(DeviceFilterTest, TypicalContainerList) {
  // Deny all, then allow the usual nodes; /dev/pts by major only; read-only for 1:9.
  auto prog = BuildDeviceFilter({
      Rule(false, "a", std::nullopt, std::nullopt, "rwm"),
      Rule(true, "c", 1, 3, "rwm"),
      Rule(true, "c", 1, 5, "rwm"),
      Rule(true, "c", 136, std::nullopt, "rwm"),
      Rule(true, "c", 1, 9, "r"),
  });
  EXPECT_EQ(Exec(prog, kChar, kR | kW, 1, 3), 1);
  EXPECT_EQ(Exec(prog, kChar, kM, 1, 5), 1);
  EXPECT_EQ(Exec(prog, kChar, kR, 136, 7), 1);
  EXPECT_EQ(Exec(prog, kBlock, kR, 136, 7), 0);  // type matters
  EXPECT_EQ(Exec(prog, kChar, kR, 1, 9), 1);
  EXPECT_EQ(Exec(prog, kChar, kR | kW, 1, 9), 0);  // w not granted
  EXPECT_EQ(Exec(prog, kChar, kR, 1, 4), 0);
  EXPECT_EQ(Exec(prog, kBlock, kR, 8, 0), 0);
}

TEST(DeviceFilterTest, LastMatchingRuleWins) {
  auto prog = BuildDeviceFilter({
      Rule(true, "a", std::nullopt, std::nullopt, "rwm"),
      Rule(false, "c", 1, 3, "rwm"),
      Rule(true, "c", 1, 3, "r"),
  });
  EXPECT_EQ(Exec(prog, kChar, kR, 1, 3), 1);  // the later allow-r wins for reads
  EXPECT_EQ(Exec(prog, kChar, kW, 1, 3), 0);  // the deny still covers writes
  EXPECT_EQ(Exec(prog, kChar, kR | kW, 1, 3), 0);
  EXPECT_EQ(Exec(prog, kChar, kW, 1, 5), 1);  // default allow
  EXPECT_EQ(Exec(prog, kBlock, kR | kW | kM, 8, 1), 1);
}

TEST(DeviceFilterTest, PartialDenyRefusesAnyDeniedBit) {
  auto prog = BuildDeviceFilter({
      Rule(true, "a", std::nullopt, std::nullopt, "rwm"),
      Rule(false, "b", 8, std::nullopt, "w"),
  });
  EXPECT_EQ(Exec(prog, kBlock, kR, 8, 1), 1);
  EXPECT_EQ(Exec(prog, kBlock, kW, 8, 1), 0);
  EXPECT_EQ(Exec(prog, kBlock, kR | kW, 8, 1), 0);
  EXPECT_EQ(Exec(prog, kChar, kW, 8, 1), 1);
}

TEST(DeviceFilterTest, ACatchAllDropsEarlierRules) {
  auto prog = BuildDeviceFilter({
      Rule(true, "c", 1, 3, "rwm"), Rule(false, "a", -1, -1, ""),  // "" and -1 mean everything
  });
  EXPECT_EQ(prog.size(), 8u);  // prologue (6) + default verdict (2)
  EXPECT_EQ(Exec(prog, kChar, kR, 1, 3), 0);
}

TEST(DeviceFilterTest, LargeNumbersCompareAsUnsigned32) {
  auto prog = BuildDeviceFilter({Rule(true, "c", 4000, 1048575, "rwm")});
  EXPECT_EQ(Exec(prog, kChar, kR, 4000, 1048575), 1);
  EXPECT_EQ(Exec(prog, kChar, kR, 4000, 1048574), 0);
}

TEST(DeviceFilterTest, ExactInstructionsForOneRule) {
  auto prog = BuildDeviceFilter({Rule(true, "c", 1, 3, "rw")});
  // prologue
  ASSERT_EQ(prog.size(), 6u + 8u + 2u);
  EXPECT_EQ(prog[0].code, BPF_LDX | BPF_MEM | BPF_W);
  EXPECT_EQ(prog[1].code, BPF_ALU | BPF_AND | BPF_K);
  EXPECT_EQ(prog[1].imm, 0xffff);
  EXPECT_EQ(prog[3].code, BPF_ALU | BPF_RSH | BPF_K);
  EXPECT_EQ(prog[3].imm, 16);
  // rule: type, access (mov, and, jne), major, minor, verdict; failed tests jump past it
  EXPECT_EQ(prog[6].code, BPF_JMP32 | BPF_JNE | BPF_K);
  EXPECT_EQ(prog[6].imm, static_cast<int32_t>(kChar));
  EXPECT_EQ(prog[6].off, 7);
  EXPECT_EQ(prog[7].code, BPF_ALU | BPF_MOV | BPF_X);
  EXPECT_EQ(prog[8].imm, static_cast<int32_t>(~(kR | kW)));
  EXPECT_EQ(prog[9].off, 4);
  EXPECT_EQ(prog[10].imm, 1);
  EXPECT_EQ(prog[10].off, 3);
  EXPECT_EQ(prog[11].imm, 3);
  EXPECT_EQ(prog[11].off, 2);
  EXPECT_EQ(prog[12].code, BPF_ALU64 | BPF_MOV | BPF_K);
  EXPECT_EQ(prog[12].imm, 1);
  EXPECT_EQ(prog[13].code, BPF_JMP | BPF_EXIT);
  EXPECT_EQ(prog[14].imm, 0);
  EXPECT_EQ(prog[15].code, BPF_JMP | BPF_EXIT);
}

TEST(DeviceFilterTest, BadRuleIsRefusedWithItsIndex) {
  try {
    BuildDeviceFilter({Rule(true, "c", 1, 3, "rw"), Rule(true, "z", 1, 3, "rw")});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).rfind("linux.resources.devices[1]", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace berth::cgroup
