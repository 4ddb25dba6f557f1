#include "glance_adapter/formats.h"

#include <gtest/gtest.h>

#include <string>

namespace berth::glance {
namespace {

TEST(DecideFormat, DockerContainerFormatIsDockerArchive) {
  auto d = DecideFormat("docker", "raw", {});
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.kind, ArchiveKind::kDockerArchive);
  EXPECT_FALSE(d.sniff);
}

TEST(DecideFormat, PropertyNamesOciArchive) {
  auto d = DecideFormat("bare", "raw", {{"berth_image_format", "oci-archive"}});
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.kind, ArchiveKind::kOciArchive);
  d = DecideFormat("compressed", "raw", {{"berth_image_format", "oci"}});
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.kind, ArchiveKind::kOciArchive);
}

TEST(DecideFormat, RootTarDiskFormatIsOneLayer) {
  auto d = DecideFormat("bare", "root-tar", {});
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.kind, ArchiveKind::kRootfsTar);
  EXPECT_FALSE(d.sniff);
}

TEST(DecideFormat, BareRawIsARootfsTarToBeSniffed) {
  auto d = DecideFormat("bare", "raw", {});
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.kind, ArchiveKind::kRootfsTar);
  EXPECT_TRUE(d.sniff);
}

TEST(DecideFormat, VmDiskFormatsAreRefusedWithWhatToUpload) {
  for (const char* df : {"qcow2", "vmdk", "vdi", "vhd", "vhdx", "iso", "ploop", "ami"}) {
    auto d = DecideFormat("bare", df, {});
    EXPECT_FALSE(d.ok) << df;
    EXPECT_NE(d.error.find(df), std::string::npos) << d.error;
    EXPECT_NE(d.error.find("container_format=docker"), std::string::npos) << d.error;
    EXPECT_NE(d.error.find("root-tar"), std::string::npos) << d.error;
  }
  for (const char* cf : {"ova", "ovf", "ami", "aki", "ari"}) {
    EXPECT_FALSE(DecideFormat(cf, "raw", {}).ok) << cf;
  }
}

TEST(DecideFormat, VmDiskFormatWinsOverTheProperty) {
  EXPECT_FALSE(DecideFormat("bare", "qcow2", {{"berth_image_format", "rootfs-tar"}}).ok);
}

TEST(DecideFormat, UnknownOrContradictoryPropertyIsRefused) {
  auto d = DecideFormat("bare", "raw", {{"berth_image_format", "vhd"}});
  EXPECT_FALSE(d.ok);
  EXPECT_NE(d.error.find("berth_image_format=vhd is unknown"), std::string::npos) << d.error;
  EXPECT_FALSE(DecideFormat("docker", "raw", {{"berth_image_format", "oci-archive"}}).ok);
}

TEST(DecideFormat, CompressedNeedsTheProperty) {
  auto d = DecideFormat("compressed", "raw", {});
  EXPECT_FALSE(d.ok);
  EXPECT_NE(d.error.find("berth_image_format"), std::string::npos);
}

TEST(LooksLikeArchive, KnowsTarAndCompressors) {
  std::string tar(512, '\0');
  tar.replace(257, 5, "ustar");
  EXPECT_TRUE(LooksLikeArchive(tar));
  EXPECT_TRUE(LooksLikeArchive(std::string("\x1f\x8b\x08\x00", 4)));
  EXPECT_TRUE(LooksLikeArchive(std::string("\x28\xb5\x2f\xfd", 4)));
  EXPECT_TRUE(
      LooksLikeArchive(std::string("\xfd"
                                   "7zXZ\x00",
                                   6)));
  EXPECT_TRUE(LooksLikeArchive("BZh91AY"));
}

TEST(LooksLikeArchive, RefusesDiskImages) {
  std::string mbr(512, '\0');
  mbr[510] = '\x55';
  mbr[511] = '\xaa';
  EXPECT_FALSE(LooksLikeArchive(mbr));
  EXPECT_FALSE(LooksLikeArchive(std::string("QFI\xfb\0\0\0\3", 8)));  // qcow2
  EXPECT_FALSE(LooksLikeArchive(""));
  EXPECT_FALSE(LooksLikeArchive(std::string(100, 'x')));
}

}  // namespace
}  // namespace berth::glance
