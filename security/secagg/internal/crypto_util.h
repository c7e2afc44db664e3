// security/secagg/internal/crypto_util.h
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace samverka::security::secagg::internal {

// SHA-256 of `bytes` (OpenSSL EVP). Aborts only if OpenSSL cannot hash,
// which means the library is unusable.
std::array<uint8_t, 32> Sha256(std::string_view bytes);

// The subject common name of the first certificate in `pem` (UTF-8).
// kInvalidArgument if `pem` holds no certificate or it has no single CN.
absl::StatusOr<std::string> CertificateCommonName(std::string_view pem);

}  // namespace samverka::security::secagg::internal
