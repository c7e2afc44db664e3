// tests/security/test_util.h
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

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

}  // namespace samverka::security::testutil
