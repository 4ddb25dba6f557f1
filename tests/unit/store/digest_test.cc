#include "runtime/store/blob/digest.h"

#include <gtest/gtest.h>

#include "runtime/common/error.h"

namespace berth::store {
namespace {

constexpr char kAbc[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(DigestTest, KnownVectors) {
  EXPECT_EQ(Digest::Of("abc").hex(), kAbc);
  EXPECT_EQ(Digest::Of("").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.Final().str(), std::string("sha256:") + kAbc);
}

TEST(DigestTest, ParsesTheOciGrammarOnly) {
  EXPECT_EQ(Digest::Parse(std::string("sha256:") + kAbc).hex(), kAbc);
  const std::string bad[] = {
      "",
      kAbc,                                                                       // no algorithm
      std::string("sha256:") + std::string(63, 'a'),                              // short
      std::string("sha256:") + std::string(65, 'a'),                              // long
      "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",  // upper
      std::string("sha512:") + kAbc,
      "sha256:../../../../etc/passwd",
      std::string("sha256:") + std::string(62, 'a') + "/x",
      std::string("sha256:") + kAbc + "\n",
  };
  for (const auto& s : bad) {
    EXPECT_FALSE(Digest::IsValid(s)) << s;
    try {
      Digest::Parse(s);
      ADD_FAILURE() << "accepted " << s;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_NE(e.message().find("invalid digest"), std::string::npos);
    }
  }
}

TEST(DigestTest, ChainId) {
  Digest a = Digest::Of("a"), b = Digest::Of("b");
  EXPECT_EQ(ChainId(Digest(), a), a);
  EXPECT_EQ(ChainId(a, b), Digest::Of(a.str() + " " + b.str()));
  EXPECT_NE(ChainId(a, b), ChainId(b, a));
}

}  // namespace
}  // namespace berth::store
