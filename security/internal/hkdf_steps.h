// security/internal/hkdf_steps.h
#pragma once

#include <cstddef>
#include <string_view>

#include "absl/status/statusor.h"
#include "security/secret_bytes.h"

namespace samverka::security::internal {

// The two halves of HKDF-SHA256 (RFC 5869 sections 2.2 and 2.3), exposed so
// the RFC's intermediate PRK values can be checked. Production code calls
// HkdfSha256 in security/hkdf.h.

// PRK = HMAC-SHA256(salt, ikm); 32 bytes. kInvalidArgument on empty `ikm`.
absl::StatusOr<SecretBytes> HkdfSha256Extract(const SecretBytes& ikm,
                                              std::string_view salt);

// OKM = T(1) || T(2) || ... truncated to `length`. kInvalidArgument unless
// `prk` has at least 32 bytes and `length` is in [1, 255 * 32].
absl::StatusOr<SecretBytes> HkdfSha256Expand(const SecretBytes& prk,
                                             std::string_view info,
                                             size_t length);

}  // namespace samverka::security::internal
