#include "runtime/store/blob/digest.h"

#include <openssl/evp.h>

#include "runtime/common/error.h"

namespace berth::store {
namespace {

constexpr std::string_view kPrefix = "sha256:";
constexpr size_t kHexLen = 64;

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string Quote(std::string_view s) {
  // Hostile input can be long or binary: show a bounded, printable prefix.
  std::string out = "\"";
  for (char c : s.substr(0, 100)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (s.size() > 100) out += "...";
  return out + "\"";
}

}  // namespace

bool Digest::IsValid(std::string_view text) {
  return text.size() == kPrefix.size() + kHexLen && text.substr(0, kPrefix.size()) == kPrefix &&
         IsLowerHex(text.substr(kPrefix.size()));
}

Digest Digest::Parse(std::string_view text) {
  if (!IsValid(text)) {
    throw Error(ErrorKind::kInvalidArgument,
                "invalid digest " + Quote(text) + ": want sha256:<64 lowercase hex>");
  }
  return FromHex(text.substr(kPrefix.size()));
}

Digest Digest::FromHex(std::string_view hex) {
  if (hex.size() != kHexLen || !IsLowerHex(hex)) {
    throw Error(ErrorKind::kInvalidArgument, "invalid sha256 hex " + Quote(hex));
  }
  Digest d;
  d.hex_ = std::string(hex);
  return d;
}

Digest Digest::Of(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Final();
}

void Sha256::CtxFree::operator()(evp_md_ctx_st* ctx) const { EVP_MD_CTX_free(ctx); }

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) {
    throw Error(ErrorKind::kInternal, "EVP_DigestInit_ex(sha256) failed");
  }
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(const void* data, size_t size) {
  if (size == 0) return;
  if (EVP_DigestUpdate(ctx_.get(), data, size) != 1) {
    throw Error(ErrorKind::kInternal, "EVP_DigestUpdate failed");
  }
}

Digest Sha256::Final() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), md, &len) != 1 || len != 32) {
    throw Error(ErrorKind::kInternal, "EVP_DigestFinal_ex failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(64, '0');
  for (unsigned i = 0; i < 32; ++i) {
    hex[2 * i] = kHex[md[i] >> 4];
    hex[2 * i + 1] = kHex[md[i] & 0xf];
  }
  return Digest::FromHex(hex);
}

Digest ChainId(const Digest& parent_chain, const Digest& diff_id) {
  if (parent_chain.empty()) return diff_id;
  return Digest::Of(parent_chain.str() + " " + diff_id.str());
}

}  // namespace berth::store
