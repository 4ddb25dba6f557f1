#include "glance_adapter/verify.h"

#include <openssl/evp.h>

#include "glance_adapter/errors.h"
#include "runtime/common/error.h"

namespace berth::glance {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const EVP_MD* Md(const std::string& algo) {
  // Glance's os_hash_algo values are hashlib names: sha512, sha256, sha384, sha1, md5.
  const EVP_MD* md = EVP_get_digestbyname(algo.c_str());
  if (!md) {
    throw Error(ErrorKind::kInvalidArgument, "os_hash_algo \"" + algo + "\" is not a known hash");
  }
  return md;
}

evp_md_ctx_st* NewCtx(const EVP_MD* md) {
  EVP_MD_CTX* c = EVP_MD_CTX_new();
  if (!c || EVP_DigestInit_ex(c, md, nullptr) != 1) {
    EVP_MD_CTX_free(c);
    throw Error(ErrorKind::kInternal, "EVP_DigestInit_ex failed");
  }
  return c;
}

std::string FinalHex(EVP_MD_CTX* c) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(c, out, &len) != 1)
    throw Error(ErrorKind::kInternal, "EVP_DigestFinal_ex");
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    hex += kHex[out[i] >> 4];
    hex += kHex[out[i] & 15];
  }
  return hex;
}

}  // namespace

void ImageVerifier::CtxFree::operator()(evp_md_ctx_st* c) const { EVP_MD_CTX_free(c); }

ImageVerifier::ImageVerifier(std::string hash_algo, std::string expected_hash,
                             std::string expected_md5)
    : algo_(Lower(hash_algo.empty() ? "sha512" : hash_algo)),
      expected_hash_(Lower(expected_hash)),
      expected_md5_(Lower(expected_md5)) {
  if (expected_hash_.empty() && expected_md5_.empty()) {
    throw Error(ErrorKind::kInvalidArgument,
                "the image has neither os_hash_value nor checksum: its data cannot be verified");
  }
  if (!expected_hash_.empty()) hash_.reset(NewCtx(Md(algo_)));
  if (!expected_md5_.empty()) md5_.reset(NewCtx(EVP_md5()));
}

ImageVerifier::~ImageVerifier() = default;

void ImageVerifier::Update(const void* data, size_t size) {
  if (hash_) EVP_DigestUpdate(hash_.get(), data, size);
  if (md5_) EVP_DigestUpdate(md5_.get(), data, size);
  bytes_ += size;
}

void ImageVerifier::Finish() {
  if (hash_) {
    std::string got = FinalHex(hash_.get());
    if (got != expected_hash_) {
      throw RemoteError(ErrorKind::kInvalidArgument, 400, "glance_image_corrupt",
                        "os_hash_value mismatch (" + algo_ + "): Glance says " + expected_hash_ +
                            ", the " + std::to_string(bytes_) + " bytes downloaded hash to " + got);
    }
  }
  if (md5_) {
    std::string got = FinalHex(md5_.get());
    if (got != expected_md5_) {
      throw RemoteError(ErrorKind::kInvalidArgument, 400, "glance_image_corrupt",
                        "checksum (md5) mismatch: Glance says " + expected_md5_ + ", the " +
                            std::to_string(bytes_) + " bytes downloaded hash to " + got);
    }
  }
}

std::string HexDigest(const std::string& algo, const std::string& data) {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> c(NewCtx(Md(Lower(algo))), EVP_MD_CTX_free);
  EVP_DigestUpdate(c.get(), data.data(), data.size());
  return FinalHex(c.get());
}

}  // namespace berth::glance
