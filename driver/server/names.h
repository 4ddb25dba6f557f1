// Identifiers berthd makes: v4 uuids for instances Nova did not name, and Docker-style
// adjective_noun names.
#pragma once

#include <string>

namespace berth::server {

std::string GenerateUuid();            // random (v4), lowercase, 8-4-4-4-12
bool IsUuid(const std::string& text);  // 8-4-4-4-12 hex digits, any case
std::string GenerateName();            // "brave_turing"
std::string RandomHex(size_t bytes);   // from OpenSSL's RNG

// A valid hostname (one RFC 1123 label) made from any display name, as Nova sanitizes
// hostnames: lowercase, runs of other characters become '-', at most 63 characters, no
// '-' at either end; "instance" when nothing is left.
std::string HostnameFromName(const std::string& name);
// True for one RFC 1123 label: 1..63 of [a-zA-Z0-9-], not starting or ending with '-'.
bool IsValidHostname(const std::string& text);

}  // namespace berth::server
