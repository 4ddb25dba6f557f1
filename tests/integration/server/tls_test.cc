// berthd over HTTPS: a throw-away CA, a server certificate for 127.0.0.1 and a client
// certificate made with the openssl CLI; requests go through libcurl.
#include <curl/curl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "runtime/common/file_util.h"
#include "tests/integration/server/daemon_fixture.h"
#include "tests/support/test_env.h"

namespace berth::testing {
namespace {

size_t CollectBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

struct Reply {
  CURLcode rc = CURLE_OK;
  long status = 0;
  std::string body;
};

struct ClientCreds {
  std::string ca = {};  // verify the server with it; empty: the system store
  std::string cert = {};
  std::string key = {};
  std::string token = {};
};

Reply Fetch(const std::string& url, const ClientCreds& creds) {
  Reply r;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> c(curl_easy_init(), curl_easy_cleanup);
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c.get(), CURLOPT_TIMEOUT, 5L);
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  if (!creds.ca.empty()) curl_easy_setopt(c.get(), CURLOPT_CAINFO, creds.ca.c_str());
  if (!creds.cert.empty()) {
    curl_easy_setopt(c.get(), CURLOPT_SSLCERT, creds.cert.c_str());
    curl_easy_setopt(c.get(), CURLOPT_SSLKEY, creds.key.c_str());
  }
  std::string auth = "X-Auth-Token: " + creds.token;
  curl_slist* headers = creds.token.empty() ? nullptr : curl_slist_append(nullptr, auth.c_str());
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers);
  r.rc = curl_easy_perform(c.get());
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(headers);
  return r;
}

void Run(const std::string& cmd) {
  ASSERT_EQ(std::system((cmd + " 2>/dev/null").c_str()), 0) << cmd;
}

// EC keys: generating them takes milliseconds, unlike RSA.
void MakeKeyAndCsr(const std::string& dir, const std::string& name, const std::string& cn) {
  Run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + dir +
      "/" + name + ".key -out " + dir + "/" + name + ".csr -subj /CN=" + cn);
}

void MakeCa(const std::string& dir, const std::string& name) {
  Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -keyout " +
      dir + "/" + name + ".key -out " + dir + "/" + name + ".crt -subj /CN=berth-test-" + name);
}

void SignWith(const std::string& dir, const std::string& ca, const std::string& name,
              const std::string& ext) {
  std::string ext_file = dir + "/" + name + ".ext";
  WriteFileAtomic(ext_file, ext + "\n");
  Run("openssl x509 -req -days 2 -in " + dir + "/" + name + ".csr -CA " + dir + "/" + ca +
      ".crt -CAkey " + dir + "/" + ca + ".key -CAcreateserial -out " + dir + "/" + name +
      ".crt -extfile " + ext_file);
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_DEFAULT); }

  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root";
    std::string d = dir_.path();
    ASSERT_NO_FATAL_FAILURE(MakeCa(d, "ca"));
    ASSERT_NO_FATAL_FAILURE(MakeKeyAndCsr(d, "server", "127.0.0.1"));
    ASSERT_NO_FATAL_FAILURE(SignWith(d, "ca", "server", "subjectAltName=IP:127.0.0.1"));
    ASSERT_NO_FATAL_FAILURE(MakeKeyAndCsr(d, "client", "berth-test-client"));
    ASSERT_NO_FATAL_FAILURE(SignWith(d, "ca", "client", "extendedKeyUsage=clientAuth"));
    // A client certificate from a CA the daemon does not trust.
    ASSERT_NO_FATAL_FAILURE(MakeCa(d, "otherca"));
    ASSERT_NO_FATAL_FAILURE(MakeKeyAndCsr(d, "stranger", "berth-test-stranger"));
    ASSERT_NO_FATAL_FAILURE(SignWith(d, "otherca", "stranger", "extendedKeyUsage=clientAuth"));
  }

  void TearDown() override {
    if (daemon_ && (HasFailure() || std::getenv("BERTH_TEST_SHOW_LOG"))) {
      std::fprintf(stderr, "--- berthd log ---\n%s\n", daemon_->log().c_str());
    }
    daemon_.reset();  // kills berthd by its pid
  }

  std::string File(const std::string& name) const { return dir_.Sub(name); }

  std::string ServerTlsLines() const {
    return "tls_cert_file = " + File("server.crt") + "\ntls_key_file = " + File("server.key") +
           "\n";
  }

  void StartDaemon(const std::string& extra_api) {
    daemon_ = std::make_unique<Daemon>(dir_.path(), extra_api);
    daemon_->Start();
  }

  std::string Https(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(daemon_->port()) + path;
  }

  // Runs berthd with the given [api] lines, expecting it to refuse to start; returns its
  // stderr. timeout(1) ends it should it start after all.
  std::string StartFailure(const std::string& extra_api) {
    Daemon config_writer(dir_.path(), extra_api);
    ::chmod(dir_.path().c_str(), 0711);  // as Daemon::Start does: the state dir's parent
    std::string err = File("startup.err");
    std::string cmd = "timeout 10 " + BuildDir() + "/driver/server/berthd --config " +
                      config_writer.config_path() + " >/dev/null 2>" + err;
    int status = std::system(cmd.c_str());
    EXPECT_NE(status, 0) << "berthd started with a bad TLS configuration";
    EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 124) << "berthd did not exit";
    return ReadFileIfExists(err).value_or("");
  }

  TempDir dir_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(TlsTest, ServesHttpsAndRefusesPlainHttp) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(ServerTlsLines()));

  Reply ok = Fetch(Https("/healthz"), {.ca = File("ca.crt")});
  ASSERT_EQ(ok.rc, CURLE_OK) << curl_easy_strerror(ok.rc);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "ok\n");

  Reply v1 = Fetch(Https("/v1/instances"), {.ca = File("ca.crt"), .token = daemon_->token()});
  ASSERT_EQ(v1.rc, CURLE_OK) << curl_easy_strerror(v1.rc);
  EXPECT_EQ(v1.status, 200) << v1.body;

  // Without our CA the server certificate is not trusted.
  Reply untrusted = Fetch(Https("/healthz"), {.ca = File("otherca.crt")});
  EXPECT_NE(untrusted.rc, CURLE_OK);

  Reply plain = Fetch("http://127.0.0.1:" + std::to_string(daemon_->port()) + "/healthz", {});
  EXPECT_TRUE(plain.rc != CURLE_OK || plain.status != 200)
      << "plain HTTP answered " << plain.status << ": " << plain.body;

  // A failed handshake must not take the listener down.
  Reply again = Fetch(Https("/healthz"), {.ca = File("ca.crt")});
  EXPECT_EQ(again.rc, CURLE_OK) << curl_easy_strerror(again.rc);
  EXPECT_EQ(again.status, 200);
}

TEST_F(TlsTest, RequiresClientCertificateSignedByTheConfiguredCa) {
  ASSERT_NO_FATAL_FAILURE(
      StartDaemon(ServerTlsLines() + "tls_client_ca_file = " + File("ca.crt") + "\n"));

  Reply anonymous = Fetch(Https("/v1"), {.ca = File("ca.crt"), .token = daemon_->token()});
  EXPECT_TRUE(anonymous.rc != CURLE_OK || anonymous.status == 0)
      << "answered without a client certificate: " << anonymous.status << " " << anonymous.body;

  Reply stranger = Fetch(Https("/v1"), {.ca = File("ca.crt"),
                                        .cert = File("stranger.crt"),
                                        .key = File("stranger.key"),
                                        .token = daemon_->token()});
  EXPECT_TRUE(stranger.rc != CURLE_OK || stranger.status == 0)
      << "answered a certificate from an untrusted CA: " << stranger.status;

  Reply ok = Fetch(Https("/v1"), {.ca = File("ca.crt"),
                                  .cert = File("client.crt"),
                                  .key = File("client.key"),
                                  .token = daemon_->token()});
  ASSERT_EQ(ok.rc, CURLE_OK) << curl_easy_strerror(ok.rc);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_NE(ok.body.find("\"versions\""), std::string::npos) << ok.body;
}

TEST_F(TlsTest, HalfOrUnreadableTlsConfigurationIsAStartupErrorNamingTheOption) {
  std::string only_cert = StartFailure("tls_cert_file = " + File("server.crt") + "\n");
  EXPECT_NE(only_cert.find("tls_key_file"), std::string::npos) << only_cert;

  std::string ca_without_tls = StartFailure("tls_client_ca_file = " + File("ca.crt") + "\n");
  EXPECT_NE(ca_without_tls.find("tls_client_ca_file"), std::string::npos) << ca_without_tls;

  std::string missing_key = StartFailure("tls_cert_file = " + File("server.crt") +
                                         "\ntls_key_file = " + File("nonexistent.key") + "\n");
  EXPECT_NE(missing_key.find("tls_key_file"), std::string::npos) << missing_key;
  EXPECT_NE(missing_key.find("nonexistent.key"), std::string::npos) << missing_key;

  std::string missing_ca =
      StartFailure(ServerTlsLines() + "tls_client_ca_file = " + File("nonexistent-ca.crt") + "\n");
  EXPECT_NE(missing_ca.find("tls_client_ca_file"), std::string::npos) << missing_ca;

  // Readable but not a key for this certificate.
  std::string mismatched = StartFailure("tls_cert_file = " + File("server.crt") +
                                        "\ntls_key_file = " + File("client.key") + "\n");
  EXPECT_NE(mismatched.find("tls_cert_file"), std::string::npos) << mismatched;
}

}  // namespace
}  // namespace berth::testing
