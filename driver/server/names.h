// Identifiers berthd makes: v4 uuids for instances Nova did not name, and Docker-style
// adjective_noun names.
#pragma once

#include <string>

namespace berth::server {

std::string GenerateUuid();            // random (v4), lowercase, 8-4-4-4-12
bool IsUuid(const std::string& text);  // 8-4-4-4-12 hex digits, any case
std::string GenerateName();            // "brave_turing"
std::string RandomHex(size_t bytes);   // from OpenSSL's RNG

}  // namespace berth::server
