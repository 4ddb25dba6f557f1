#include <linux/capability.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/common/error.h"
#include "runtime/security/security.h"

namespace berth::security {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

uint64_t Bit(int cap) { return uint64_t{1} << cap; }

TEST(ParseCapabilities, MapsEachSetToItsBits) {
  spec::Capabilities caps;
  caps.bounding = {"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"};
  caps.effective = {"CAP_CHOWN"};
  caps.permitted = {"CAP_CHOWN", "CAP_KILL"};
  caps.inheritable = {"CAP_NET_BIND_SERVICE"};
  caps.ambient = {"CAP_NET_BIND_SERVICE"};
  CapabilitySets sets = ParseCapabilities(caps);
  EXPECT_EQ(sets.bounding, Bit(CAP_CHOWN) | Bit(CAP_NET_BIND_SERVICE) | Bit(CAP_SYS_ADMIN));
  EXPECT_EQ(sets.effective, Bit(CAP_CHOWN));
  EXPECT_EQ(sets.permitted, Bit(CAP_CHOWN) | Bit(CAP_KILL));
  EXPECT_EQ(sets.inheritable, Bit(CAP_NET_BIND_SERVICE));
  EXPECT_EQ(sets.ambient, Bit(CAP_NET_BIND_SERVICE));
}

TEST(ParseCapabilities, EmptySetsAreZero) {
  CapabilitySets sets = ParseCapabilities(spec::Capabilities{});
  EXPECT_EQ(sets.bounding | sets.effective | sets.permitted | sets.inheritable | sets.ambient, 0u);
}

TEST(ParseCapabilities, UnknownNameNamesTheFieldPath) {
  spec::Capabilities caps;
  caps.bounding = {"CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_FOO"};
  try {
    ParseCapabilities(caps);
    FAIL() << "CAP_FOO was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_THAT(e.message(),
                HasSubstr("process.capabilities.bounding[3]: unknown capability \"CAP_FOO\""));
  }
}

TEST(ParseCapabilities, RejectsNamesLibcapWouldStretchTo) {
  // cap_from_name also takes numbers and lower case; the spec does not.
  for (const char* name : {"0", "cap_chown", "CHOWN", "CAP_", ""}) {
    spec::Capabilities caps;
    caps.ambient = {name};
    try {
      ParseCapabilities(caps);
      ADD_FAILURE() << "accepted \"" << name << "\"";
    } catch (const Error& e) {
      EXPECT_THAT(e.message(), HasSubstr("process.capabilities.ambient[0]")) << name;
    }
  }
}

TEST(ParseCapabilities, SkipsCapabilitiesNewerThanTheKernel) {
  int last = LastCapability();
  ASSERT_GE(last, CAP_AUDIT_WRITE);
  ASSERT_LE(last, 63);
  // CAP_CHECKPOINT_RESTORE (40) is the newest name libcap 2.66 knows; on an older kernel
  // it must be dropped silently, here it must be kept.
  spec::Capabilities caps;
  caps.permitted = {"CAP_CHECKPOINT_RESTORE"};
  CapabilitySets sets = ParseCapabilities(caps);
  if (last >= CAP_CHECKPOINT_RESTORE) {
    EXPECT_EQ(sets.permitted, Bit(CAP_CHECKPOINT_RESTORE));
  } else {
    EXPECT_EQ(sets.permitted, 0u);
  }
}

TEST(DefaultCapabilities, IsDockersSetWithoutInheritableOrAmbient) {
  spec::Capabilities caps = DefaultCapabilities();
  CapabilitySets sets = ParseCapabilities(caps);
  uint64_t expected = 0;
  for (int cap : {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW,
                  CAP_SETGID, CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE,
                  CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE}) {
    expected |= Bit(cap);
  }
  EXPECT_EQ(caps.bounding.size(), 14u);
  EXPECT_EQ(sets.bounding, expected);
  EXPECT_EQ(sets.effective, expected);
  EXPECT_EQ(sets.permitted, expected);
  EXPECT_EQ(sets.inheritable, 0u);
  EXPECT_EQ(sets.ambient, 0u);
  EXPECT_EQ(sets.bounding & Bit(CAP_SYS_ADMIN), 0u);
}

TEST(CapabilityNames, ListsSetBitsInOrder) {
  EXPECT_THAT(CapabilityNames(Bit(CAP_SYS_ADMIN) | Bit(CAP_CHOWN) | Bit(CAP_NET_RAW)),
              ElementsAre("CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN"));
  EXPECT_TRUE(CapabilityNames(0).empty());
}

TEST(CapabilityNames, RoundTripsThroughParse) {
  spec::Capabilities caps = DefaultCapabilities();
  uint64_t mask = ParseCapabilities(caps).bounding;
  spec::Capabilities again;
  again.bounding = CapabilityNames(mask);
  EXPECT_EQ(ParseCapabilities(again).bounding, mask);
}

}  // namespace
}  // namespace berth::security
