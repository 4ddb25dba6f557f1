#include "driver/server/names.h"

#include <openssl/rand.h>

#include <cctype>
#include <cstdint>
#include <iterator>

#include "runtime/common/error.h"

namespace berth::server {
namespace {

void RandomBytes(unsigned char* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) {
    throw Error(ErrorKind::kSystem, "RAND_bytes failed");
  }
}

std::string Hex(const unsigned char* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

const char* const kAdjectives[] = {
    "admiring", "brave",   "calm",   "clever", "dazzling", "eager",      "elegant", "fervent",
    "focused",  "gallant", "gifted", "happy",  "hopeful",  "jolly",      "keen",    "kind",
    "loving",   "lucid",   "modest", "nifty",  "nimble",   "optimistic", "pensive", "quirky",
    "relaxed",  "serene",  "sharp",  "stoic",  "tender",   "upbeat",     "vibrant", "zealous"};
const char* const kNouns[] = {
    "babbage", "bohr",    "curie",   "darwin",  "dijkstra", "einstein", "euler",    "feynman",
    "galileo", "hopper",  "hypatia", "johnson", "kepler",   "knuth",    "lamarr",   "lovelace",
    "meitner", "newton",  "noether", "pascal",  "ritchie",  "shannon",  "thompson", "turing",
    "volta",   "wozniak", "yalow",   "zuse",    "torvalds", "liskov",   "hamilton", "ramanujan"};

}  // namespace

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RandomBytes(reinterpret_cast<unsigned char*>(raw.data()), bytes);
  return Hex(reinterpret_cast<const unsigned char*>(raw.data()), bytes);
}

std::string GenerateUuid() {
  unsigned char b[16];
  RandomBytes(b, sizeof b);
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  std::string h = Hex(b, sizeof b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

bool IsUuid(const std::string& text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

std::string GenerateName() {
  unsigned char b[2];
  RandomBytes(b, sizeof b);
  return std::string(kAdjectives[b[0] % std::size(kAdjectives)]) + "_" +
         kNouns[b[1] % std::size(kNouns)];
}

std::string HostnameFromName(const std::string& name) {
  std::string out;
  bool dash = false;
  for (unsigned char c : name) {
    if (std::isalnum(c) && c < 0x80) {
      bool sep = dash && !out.empty();
      if (out.size() + (sep ? 2 : 1) > 63) break;
      if (sep) out += '-';
      dash = false;
      out += static_cast<char>(std::tolower(c));
    } else {
      dash = true;
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "instance" : out;
}

bool IsValidHostname(const std::string& text) {
  if (text.empty() || text.size() > 63 || text.front() == '-' || text.back() == '-') return false;
  for (unsigned char c : text) {
    if (!(std::isalnum(c) && c < 0x80) && c != '-') return false;
  }
  return true;
}

}  // namespace berth::server
