// security/x25519.h
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"
#include "security/internal/openssl_util.h"
#include "security/secret_bytes.h"

namespace samverka::security {

// An X25519 public key (RFC 7748): the 32-byte little-endian u-coordinate.
// SecAgg clients advertise two of these per round (one for encrypting
// shares, one for pairwise masks). A value type; thread-safe for const use.
class X25519PublicKey {
 public:
  static constexpr size_t kSize = 32;

  // kInvalidArgument if `raw` is not exactly 32 bytes. Low-order points are
  // accepted here and rejected by Agree(), as RFC 7748 section 6.1 suggests.
  static absl::StatusOr<X25519PublicKey> FromBytes(
      std::span<const uint8_t> raw);
  static absl::StatusOr<X25519PublicKey> FromBytes(std::string_view raw);

  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }

  friend bool operator==(const X25519PublicKey&,
                         const X25519PublicKey&) = default;

 private:
  friend class X25519PrivateKey;

  explicit X25519PublicKey(const std::array<uint8_t, kSize>& bytes)
      : bytes_(bytes) {}

  std::array<uint8_t, kSize> bytes_;
};

// An X25519 private key, held in an OpenSSL EVP_PKEY. Move-only; the raw
// scalar is never exported. To recreate a key (SecAgg reconstructs a dropped
// client's mask key from Shamir shares) keep its 32-byte seed in a
// SecretBytes and call FromBytes(seed).
// Thread-safe: all methods are const and OpenSSL keys are immutable.
class X25519PrivateKey {
 public:
  static constexpr size_t kSize = 32;

  // A fresh key from OpenSSL's CSPRNG. kInternal if OpenSSL fails.
  static absl::StatusOr<X25519PrivateKey> Generate();
  // The key whose RFC 7748 scalar is `raw` (clamped as the RFC says).
  // kInvalidArgument if `raw` is not exactly 32 bytes.
  static absl::StatusOr<X25519PrivateKey> FromBytes(const SecretBytes& raw);

  X25519PrivateKey(X25519PrivateKey&&) noexcept = default;
  X25519PrivateKey& operator=(X25519PrivateKey&&) noexcept = default;

  const X25519PublicKey& public_key() const { return public_key_; }

 private:
  friend absl::StatusOr<SecretBytes> Agree(const X25519PrivateKey&,
                                           const X25519PublicKey&);

  X25519PrivateKey(internal::EvpPkeyPtr key, X25519PublicKey public_key)
      : key_(std::move(key)), public_key_(public_key) {}
  static absl::StatusOr<X25519PrivateKey> FromEvpPkey(internal::EvpPkeyPtr key);

  internal::EvpPkeyPtr key_;
  X25519PublicKey public_key_;
};

// The raw 32-byte X25519 shared secret of `own` and `peer`. It is not a key:
// derive keys from it with HkdfSha256. kInvalidArgument if the result is all
// zero, i.e. `peer` is a low-order point (RFC 7748 section 6.1); kInternal
// if OpenSSL fails otherwise.
absl::StatusOr<SecretBytes> Agree(const X25519PrivateKey& own,
                                  const X25519PublicKey& peer);

}  // namespace samverka::security
