// security/aead.h
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "security/secret_bytes.h"

namespace samverka::security {

// Authenticated encryption (AES-256-GCM) for sealing Shamir shares and
// masked updates in transit. Nonces are 96-bit values drawn internally from
// the CSPRNG; callers cannot supply or reuse one. With random nonces keep
// well under 2^32 messages per key (SP 800-38D section 8.3); SecAgg derives a
// fresh key per peer pair and round, so this is never close.
// Thread-safe: all methods are const.
class Aead {
 public:
  // kInvalidArgument if `key` is not 32 bytes. The key is copied.
  static absl::StatusOr<std::unique_ptr<Aead>> Create(const SecretBytes& key);
  virtual ~Aead() = default;

  // Returns nonce || ciphertext || tag (12 + |plaintext| + 16 bytes), bound
  // to `associated_data` (e.g. round id, sender and recipient ids).
  // kInvalidArgument if `plaintext` exceeds GCM's limit; kInternal if the
  // CSPRNG or OpenSSL fails.
  virtual absl::StatusOr<std::string> Seal(
      std::string_view plaintext, std::string_view associated_data) const = 0;
  // kDataLoss on any failure (truncated, tampered, wrong key or associated
  // data); the reason is deliberately hidden.
  virtual absl::StatusOr<std::string> Open(
      std::string_view sealed, std::string_view associated_data) const = 0;
};

}  // namespace samverka::security
