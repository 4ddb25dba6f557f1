// The eBPF program builder: jumps to labels bound before or after them get the offsets
// the kernel wants (instructions after the jump), and a label never bound is our bug.
#include "runtime/common/bpf.h"

#include <gtest/gtest.h>

#include "runtime/common/error.h"

namespace berth::bpf {
namespace {

TEST(ProgramBuilderTest, JumpsLandOnTheirLabels) {
  ProgramBuilder p;
  p.Bind("top");                                         // 0
  p.EmitJump(JumpImm(BPF_JEQ, BPF_REG_1, 0, 0), "end");  // 0 -> 5
  p.EmitLoadMap(BPF_REG_1, 7);                           // 1, 2
  p.EmitJump(Jump(0), "top");                            // 3 -> 0
  p.Emit(Mov64Imm(BPF_REG_0, 1));                        // 4
  p.Bind("end");                                         // 5
  p.Emit(Exit());                                        // 5
  std::vector<bpf_insn> program = p.Finish();
  ASSERT_EQ(program.size(), 6u);
  EXPECT_EQ(program[0].off, 4);
  EXPECT_EQ(program[3].off, -4);
  EXPECT_EQ(program[1].code, BPF_LD | BPF_DW | BPF_IMM);
  EXPECT_EQ(program[1].src_reg, BPF_PSEUDO_MAP_FD);
  EXPECT_EQ(program[1].imm, 7);
  EXPECT_EQ(program[2].code, 0);
  EXPECT_EQ(program[5].code, BPF_JMP | BPF_EXIT);
}

TEST(ProgramBuilderTest, AJumpToALabelNeverBoundIsRefused) {
  ProgramBuilder p;
  p.EmitJump(Jump(0), "nowhere");
  p.Emit(Exit());
  try {
    p.Finish();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInternal);
    EXPECT_NE(e.message().find("nowhere"), std::string::npos) << e.message();
  }
}

}  // namespace
}  // namespace berth::bpf
