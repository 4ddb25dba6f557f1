// Driver decisions as data, without mounting: mount plans, lowerdir order, metadata rules.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/store/layer/drivers.h"
#include "runtime/store/layer/mount.h"
#include "tests/support/test_env.h"

namespace berth::store {
namespace {

TEST(MountPlanTest, FlagsAndData) {
  MountPlan p = PlanMount({"overlay", "overlay", {"index=off", "nodev", "ro", "lowerdir=a:b"}});
  EXPECT_EQ(p.flags, static_cast<unsigned long>(MS_NODEV | MS_RDONLY));
  EXPECT_EQ(p.data, "index=off,lowerdir=a:b");
  EXPECT_FALSE(p.remount_readonly);
  MountPlan b = PlanMount({"bind", "/x", {"rbind", "ro", "nodev"}});
  EXPECT_EQ(b.flags, static_cast<unsigned long>(MS_BIND | MS_REC | MS_RDONLY | MS_NODEV));
  EXPECT_TRUE(b.remount_readonly);
  EXPECT_EQ(b.data, "");
}

TEST(OverlayMountsTest, LowerdirsNearestFirstThroughShortLinks) {
  berth::testing::TempDir tmp;
  OverlaySnapshotter sn(tmp.path());
  sn.Prepare("k1", "");
  sn.Commit("base", "k1");
  sn.Prepare("k2", "base");
  sn.Commit("mid", "k2");
  auto active = sn.Prepare("c", "mid");
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].type, "overlay");
  std::string lower, upper;
  for (const auto& o : active[0].options) {
    if (o.rfind("lowerdir=", 0) == 0) lower = o.substr(9);
    if (o.rfind("upperdir=", 0) == 0) upper = o.substr(9);
  }
  auto colon = lower.find(':');
  ASSERT_NE(colon, std::string::npos) << lower;
  std::string first = lower.substr(0, colon), second = lower.substr(colon + 1);
  EXPECT_EQ(first.rfind(tmp.path() + "/l/", 0), 0u) << first;
  // The nearest parent ("mid") comes first: its link resolves to snapshot 2.
  char buf[256] = {};
  ASSERT_GT(::readlink(first.c_str(), buf, sizeof buf - 1), 0);
  EXPECT_STREQ(buf, "../snapshots/2/fs");
  EXPECT_EQ(upper, sn.ApplyDir("c"));
  EXPECT_EQ(sn.Mounts("c"), active);
  // A view of one layer is a read-only bind; of two, a read-only overlay without upper.
  auto v1 = sn.View("v1", "base");
  EXPECT_EQ(v1[0].type, "bind");
  EXPECT_NE(std::find(v1[0].options.begin(), v1[0].options.end(), "ro"), v1[0].options.end());
  auto v2 = sn.View("v2", "mid");
  EXPECT_EQ(v2[0].type, "overlay");
  for (const auto& o : v2[0].options) EXPECT_NE(o.rfind("upperdir=", 0), 0u);
  // Removing a snapshot drops its link.
  sn.Remove("v2");
  sn.Remove("c");
  sn.Remove("v1");
  sn.Remove("mid");
  EXPECT_FALSE(PathExists(first));
}

TEST(VfsTest, PrepareCopiesTheParent) {
  berth::testing::TempDir tmp;
  VfsSnapshotter sn(tmp.path());
  sn.Prepare("k", "");
  WriteFileAtomic(sn.ApplyDir("k") + "/f", "data");
  sn.Commit("base", "k");
  sn.Prepare("c", "base");
  EXPECT_EQ(ReadFile(sn.ApplyDir("c") + "/f"), "data");
  try {
    sn.Commit("base", "c");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kAlreadyExists);
  }
  try {
    sn.ApplyDir("base");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  }
}

TEST(SnapshotDbTest, RoundTripAndCorruption) {
  SnapshotDb db;
  db.next_id = 7;
  db.records["a \"quoted\" key"] = {
      "3", "LINK", {"a \"quoted\" key", "p", SnapshotKind::kView, 1, 2}};
  SnapshotDb back = ParseSnapshotDb(SerializeSnapshotDb(db), "m");
  EXPECT_EQ(back.next_id, 7u);
  ASSERT_EQ(back.records.size(), 1u);
  EXPECT_EQ(back.records.begin()->second.info.kind, SnapshotKind::kView);
  EXPECT_EQ(back.records.begin()->second.link, "LINK");
  try {
    ParseSnapshotDb(R"({"next_id":1,"snapshots":{"k":{"id":3}}})", "m");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInternal);
    EXPECT_NE(e.message().find("corrupt snapshot metadata"), std::string::npos);
  }
}

}  // namespace
}  // namespace berth::store
