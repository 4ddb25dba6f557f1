#include "runtime/store/archive/path.h"

#include <gtest/gtest.h>

#include "runtime/common/error.h"

namespace berth::store {
namespace {

using Parts = std::vector<std::string>;

TEST(PathTest, NormalisesHarmlessSpellings) {
  EXPECT_EQ(SanitizeMemberPath("etc/passwd"), (Parts{"etc", "passwd"}));
  EXPECT_EQ(SanitizeMemberPath("./etc/passwd"), (Parts{"etc", "passwd"}));
  EXPECT_EQ(SanitizeMemberPath("etc//./passwd/"), (Parts{"etc", "passwd"}));
  EXPECT_EQ(SanitizeMemberPath("./"), Parts{});
  EXPECT_EQ(SanitizeMemberPath("."), Parts{});
  EXPECT_EQ(SanitizeMemberPath("a..b/..c"), (Parts{"a..b", "..c"}));
  EXPECT_EQ(JoinComponents({"a", "b", "c"}, 2), "a/b");
}

TEST(PathTest, RefusesEscapes) {
  const std::string bad[] = {
      "../../etc/x",
      "..",
      "a/../../b",
      "a/b/..",
      "/etc/passwd",
      "//etc",
      std::string("a\0b", 3),
      std::string(300, 'x'),
      "a/" + std::string(256, 'y'),
      std::string(5000, 'a'),
  };
  for (const auto& p : bad) {
    try {
      SanitizeMemberPath(p);
      ADD_FAILURE() << "accepted " << p.substr(0, 40);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_NE(e.message().find("member path"), std::string::npos);
    }
  }
  // NAME_MAX itself is fine.
  EXPECT_EQ(SanitizeMemberPath(std::string(255, 'n')).size(), 1u);
}

TEST(PathTest, WhiteoutsByNameAlone) {
  std::string target;
  EXPECT_EQ(ClassifyWhiteout("passwd", &target), WhiteoutKind::kNone);
  EXPECT_EQ(ClassifyWhiteout(".wh", &target), WhiteoutKind::kNone);
  EXPECT_EQ(ClassifyWhiteout(".whfoo", &target), WhiteoutKind::kNone);
  EXPECT_EQ(ClassifyWhiteout(".wh..wh..opq", &target), WhiteoutKind::kOpaque);
  EXPECT_EQ(ClassifyWhiteout(".wh..wh.plnk", &target), WhiteoutKind::kMeta);
  EXPECT_EQ(ClassifyWhiteout(".wh.passwd", &target), WhiteoutKind::kFile);
  EXPECT_EQ(target, "passwd");
  EXPECT_EQ(ClassifyWhiteout(".wh..hidden", &target), WhiteoutKind::kFile);
  EXPECT_EQ(target, ".hidden");
  for (const char* bad : {".wh.", ".wh..", ".wh..."}) {
    try {
      ClassifyWhiteout(bad, &target);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace berth::store
