#include "runtime/store/image/manifest.h"

#include <gtest/gtest.h>

#include "runtime/common/error.h"

namespace berth::store {
namespace {

const std::string kD1 = "sha256:" + std::string(64, 'a');
const std::string kD2 = "sha256:" + std::string(64, 'b');

// Expects kInvalidArgument whose message contains every fragment.
template <typename Fn>
void ExpectBad(Fn fn, std::initializer_list<std::string> fragments) {
  try {
    fn();
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.message();
    for (const auto& f : fragments) {
      EXPECT_NE(e.message().find(f), std::string::npos) << e.message() << " lacks " << f;
    }
  }
}

TEST(ManifestTest, DockerManifest) {
  auto m = ParseDockerManifest(
      R"([{"Config":"c.json","RepoTags":["a:1"],"Layers":["l1/layer.tar","l2/layer.tar"]}])");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].config, "c.json");
  EXPECT_EQ(m[0].repo_tags, std::vector<std::string>{"a:1"});
  EXPECT_EQ(m[0].layers.size(), 2u);
  // RepoTags null is what `docker save <id>` writes.
  EXPECT_TRUE(
      ParseDockerManifest(R"([{"Config":"c","RepoTags":null,"Layers":[]}])")[0].repo_tags.empty());
}

TEST(ManifestTest, DockerManifestErrorsNameTheField) {
  ExpectBad([] { ParseDockerManifest("{"); }, {"manifest.json", "invalid JSON"});
  ExpectBad([] { ParseDockerManifest("{}"); }, {"want an array"});
  ExpectBad([] { ParseDockerManifest("[]"); }, {"no images"});
  ExpectBad([] { ParseDockerManifest("[1]"); }, {"[0]", "want an object"});
  ExpectBad([] { ParseDockerManifest(R"([{"Layers":[]}])"); }, {"[0].Config", "missing"});
  ExpectBad([] { ParseDockerManifest(R"([{"Config":"c","Layers":["a",7]}])"); },
            {"[0].Layers[1]", "want a string"});
  ExpectBad([] { ParseDockerManifest(R"([{"Config":"c","Layers":[]}] trailing)"); },
            {"invalid JSON"});
}

TEST(ManifestTest, OciIndexAndManifest) {
  auto idx = ParseOciIndex(
      R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      kD1 +
      R"(","size":12,"platform":{"os":"linux","architecture":"amd64"},"annotations":{"org.opencontainers.image.ref.name":"v1"}}]})");
  ASSERT_EQ(idx.size(), 1u);
  EXPECT_EQ(idx[0].digest.str(), kD1);
  EXPECT_EQ(idx[0].size, 12);
  EXPECT_EQ(idx[0].architecture, "amd64");
  EXPECT_EQ(idx[0].annotations.at("org.opencontainers.image.ref.name"), "v1");

  auto m = ParseOciManifest(
      R"({"schemaVersion":2,"config":{"mediaType":"x","digest":")" + kD1 +
      R"(","size":3},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":")" +
      kD2 + R"(","size":4}]})");
  EXPECT_EQ(m.config.digest.str(), kD1);
  ASSERT_EQ(m.layers.size(), 1u);
  EXPECT_EQ(m.layers[0].size, 4);
}

TEST(ManifestTest, OciErrors) {
  ExpectBad([] { ParseOciIndex(R"({"schemaVersion":1,"manifests":[]})"); }, {"schemaVersion"});
  ExpectBad([] { ParseOciIndex(R"({"schemaVersion":2,"manifests":{}})"); },
            {"manifests", "want an array"});
  ExpectBad(
      [] {
        ParseOciIndex(
            R"({"schemaVersion":2,"manifests":[{"digest":"sha256:../../etc/passwd","size":1}]})");
      },
      {"manifests[0].digest", "invalid digest"});
  ExpectBad(
      [] {
        ParseOciIndex(R"({"schemaVersion":2,"manifests":[{"digest":")" + kD1 + R"(","size":-1}]})");
      },
      {"manifests[0].size"});
  ExpectBad(
      [] {
        ParseOciManifest(
            R"({"schemaVersion":2,"config":{"digest":")" + kD1 +
            R"(","size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+encrypted","digest":")" +
            kD1 + R"(","size":1}]})");
      },
      {"layers[0].mediaType", "unsupported"});
}

TEST(ManifestTest, ImageConfig) {
  auto c = ParseImageConfig(R"({
    "architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
    "config":{"Entrypoint":["/init"],"Cmd":["-v"],"Env":["PATH=/bin"],"WorkingDir":"/srv",
              "User":"1000:1000","ExposedPorts":{"80/tcp":{},"53/udp":{}},
              "Labels":{"a":"b"},"StopSignal":"SIGRTMIN+3","Volumes":null},
    "rootfs":{"type":"layers","diff_ids":[")" +
                            kD1 + R"(",")" + kD2 + R"("]},
    "history":[{"created_by":"ADD x"},{"created_by":"ENV y","empty_layer":true}]})");
  EXPECT_EQ(c.config.entrypoint, std::vector<std::string>{"/init"});
  EXPECT_EQ(c.config.cmd, std::vector<std::string>{"-v"});
  EXPECT_EQ(c.config.working_dir, "/srv");
  EXPECT_EQ(c.config.user, "1000:1000");
  EXPECT_EQ(c.config.exposed_ports.size(), 2u);
  EXPECT_EQ(c.config.labels.at("a"), "b");
  EXPECT_EQ(c.config.stop_signal, "SIGRTMIN+3");
  EXPECT_EQ(c.diff_ids.size(), 2u);
  ASSERT_EQ(c.history.size(), 2u);
  EXPECT_TRUE(c.history[1].empty_layer);
  // Round trip through our own form keeps the fields.
  std::string json = ImageConfigToJson(c);
  EXPECT_NE(json.find("SIGRTMIN+3"), std::string::npos);
}

TEST(ManifestTest, ImageConfigErrors) {
  ExpectBad([] { ParseImageConfig("[]"); }, {"image config", "want an object"});
  ExpectBad([] { ParseImageConfig("{}"); }, {"rootfs", "missing"});
  ExpectBad([] { ParseImageConfig(R"({"rootfs":{"type":"x","diff_ids":[]}})"); }, {"rootfs.type"});
  ExpectBad([] { ParseImageConfig(R"({"rootfs":{"type":"layers","diff_ids":["nope"]}})"); },
            {"rootfs.diff_ids[0]", "invalid digest"});
  ExpectBad(
      [] {
        ParseImageConfig(R"({"config":{"Cmd":"sh"},"rootfs":{"type":"layers","diff_ids":[]}})");
      },
      {"config.Cmd", "want an array"});
  ExpectBad(
      [] {
        ParseImageConfig(
            R"({"config":{"Labels":{"a":1}},"rootfs":{"type":"layers","diff_ids":[]}})");
      },
      {"config.Labels.a", "want a string"});
  ExpectBad([] { ParseImageConfig(std::string(5 << 20, ' ')); }, {"larger than"});
}

}  // namespace
}  // namespace berth::store
