// Content digests in the OCI grammar ("sha256:<64 lowercase hex>") and a streaming SHA-256
// on OpenSSL's EVP (which uses the CPU's SHA extensions).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace berth::store {

// A validated sha256 digest. Only sha256 is accepted: every path built from a digest comes
// from hex() of one of these, so a digest string can never name a host path.
class Digest {
 public:
  Digest() = default;

  // Parses "sha256:<64 lowercase hex>"; anything else is kInvalidArgument naming the input.
  static Digest Parse(std::string_view text);
  // True when Parse would accept the text.
  static bool IsValid(std::string_view text);
  static Digest FromHex(std::string_view hex);
  // The digest of a whole buffer.
  static Digest Of(std::string_view data);

  bool empty() const { return hex_.empty(); }
  const std::string& hex() const { return hex_; }
  std::string str() const { return "sha256:" + hex_; }
  std::string Short() const { return hex_.substr(0, 12); }

  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest&, const Digest&) = default;

 private:
  std::string hex_;
};

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // Finishes the hash; the object must not be updated afterwards.
  Digest Final();

 private:
  struct CtxFree {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, CtxFree> ctx_;
};

// OCI chain id: chain(L0) = diff(L0); chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln)).
Digest ChainId(const Digest& parent_chain, const Digest& diff_id);

}  // namespace berth::store
