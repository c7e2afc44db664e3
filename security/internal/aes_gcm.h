// security/internal/aes_gcm.h
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "security/secret_bytes.h"

namespace samverka::security::internal {

// The AES-256-GCM core behind security::Aead, with the nonce as a parameter.
// Only Aead (random nonces) and the known-answer tests may call the sealing
// function: reusing a nonce under one key breaks GCM completely.

inline constexpr size_t kGcmKeySize = 32;
inline constexpr size_t kGcmNonceSize = 12;
inline constexpr size_t kGcmTagSize = 16;

// Returns nonce || ciphertext || tag. kInvalidArgument if `key` is not 32
// bytes, `nonce` not 12 bytes, or `plaintext` is longer than GCM allows
// (2^36 - 32 bytes); kInternal if OpenSSL fails.
absl::StatusOr<std::string> AesGcmSealWithNonce(
    const SecretBytes& key, std::string_view nonce, std::string_view plaintext,
    std::string_view associated_data);

// Opens nonce || ciphertext || tag. Every failure (short input, wrong tag,
// wrong key or associated data, OpenSSL error) is the same kDataLoss.
absl::StatusOr<std::string> AesGcmOpen(const SecretBytes& key,
                                       std::string_view sealed,
                                       std::string_view associated_data);

}  // namespace samverka::security::internal
