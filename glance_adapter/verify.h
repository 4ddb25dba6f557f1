// Checks downloaded image data against what Glance recorded: os_hash_value with the
// algorithm in os_hash_algo (sha512 when Glance names none) and the md5 `checksum`, both
// computed while the bytes stream by (OpenSSL EVP), so no second pass over the data.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

struct evp_md_ctx_st;

namespace berth::glance {

class ImageVerifier {
 public:
  // Empty expected values are not checked; at least one must be given (kInvalidArgument:
  // data that cannot be verified is not imported). An unknown algorithm is kInvalidArgument.
  ImageVerifier(std::string hash_algo, std::string expected_hash, std::string expected_md5);
  ~ImageVerifier();
  ImageVerifier(const ImageVerifier&) = delete;
  ImageVerifier& operator=(const ImageVerifier&) = delete;

  void Update(const void* data, size_t size);
  // On a mismatch throws RemoteError 400 "glance_image_corrupt" naming the expected and
  // the computed values.
  void Finish();
  uint64_t bytes() const { return bytes_; }

 private:
  struct CtxFree {
    void operator()(evp_md_ctx_st* c) const;
  };
  std::string algo_;
  std::string expected_hash_;
  std::string expected_md5_;
  std::unique_ptr<evp_md_ctx_st, CtxFree> hash_;
  std::unique_ptr<evp_md_ctx_st, CtxFree> md5_;
  uint64_t bytes_ = 0;
};

// Hex digest of a whole buffer ("sha512", "md5", ...), for tests and small data.
std::string HexDigest(const std::string& algo, const std::string& data);

}  // namespace berth::glance
