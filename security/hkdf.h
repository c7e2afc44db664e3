// security/hkdf.h
#pragma once

#include <cstddef>
#include <string_view>

#include "absl/status/statusor.h"
#include "security/secret_bytes.h"

namespace samverka::security {

// HKDF with SHA-256 (RFC 5869, extract then expand), computed by OpenSSL's
// EVP_KDF "HKDF". Derives AEAD keys from X25519 shared secrets and PRG keys
// from seeds. `salt` and `info` are public byte strings; an empty salt means
// 32 zero bytes (RFC 5869 section 2.2). Returns `length` bytes of output key
// material. kInvalidArgument if `ikm` is empty or `length` is not in
// [1, 255 * 32]; kInternal if OpenSSL fails.
// Thread-safe (no shared state).
absl::StatusOr<SecretBytes> HkdfSha256(const SecretBytes& ikm,
                                       std::string_view salt,
                                       std::string_view info, size_t length);

}  // namespace samverka::security
