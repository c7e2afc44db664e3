// tests/security/test_util.h
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "security/secret_bytes.h"

namespace samverka::security::testutil {

// Hex decoding and encoding for known-answer tests. FromHex aborts the test
// binary on malformed hex: vectors are fixed data, so that is a test bug.
std::string FromHex(std::string_view hex);
SecretBytes SecretFromHex(std::string_view hex);
std::string ToHex(std::string_view bytes);
std::string ToHex(std::span<const uint8_t> bytes);
// For comparing secrets against published vectors only; real code never
// turns a secret into text.
std::string ToHexForTest(const SecretBytes& secret);

// Parses tests/data/security/<file>. Aborts if missing or malformed.
nlohmann::json LoadTestData(std::string_view file);

// The string field `key` of a test vector, as text, as decoded hex bytes,
// or as decoded hex bytes in a SecretBytes.
std::string Field(const nlohmann::json& vector, const char* key);
std::string HexField(const nlohmann::json& vector, const char* key);
SecretBytes SecretField(const nlohmann::json& vector, const char* key);

}  // namespace samverka::security::testutil
