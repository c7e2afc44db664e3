// tests/security/test_util.cc
#include "tests/security/test_util.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace samverka::security::testutil {
namespace {

int Nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "test data error: %s\n", message.c_str());
  std::abort();
}

}  // namespace

std::string FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) Fail("odd-length hex string");
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = Nibble(hex[2 * i]);
    const int lo = Nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) Fail("bad hex digit");
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

SecretBytes SecretFromHex(std::string_view hex) {
  return SecretBytes::CopyFrom(FromHex(hex));
}

std::string ToHex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

std::string ToHex(std::string_view bytes) {
  return ToHex(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

std::string ToHexForTest(const SecretBytes& secret) {
  return ToHex(secret.span());
}

nlohmann::json LoadTestData(std::string_view file) {
  const std::string path = std::string(SAMVERKA_SOURCE_DIR) +
                           "/tests/data/security/" + std::string(file);
  std::ifstream in(path);
  if (!in) Fail("cannot open " + path);
  nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
  if (doc.is_discarded()) Fail("malformed JSON in " + path);
  return doc;
}

std::string Field(const nlohmann::json& vector, const char* key) {
  if (!vector.contains(key) || !vector[key].is_string()) {
    Fail(std::string("test vector has no string field ") + key);
  }
  return vector[key].get<std::string>();
}

std::string HexField(const nlohmann::json& vector, const char* key) {
  return FromHex(Field(vector, key));
}

SecretBytes SecretField(const nlohmann::json& vector, const char* key) {
  return SecretFromHex(Field(vector, key));
}

}  // namespace samverka::security::testutil
