// security/shamir.h
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "security/secret_bytes.h"

namespace samverka::security {

// Shamir t-of-k secret sharing (A. Shamir, "How to share a secret", CACM
// 22(11), 1979) of 32-byte secrets, as SecAgg uses it to share each client's
// mask-key seed and self-mask seed among its neighbours (Bonawitz et al.,
// "Practical Secure Aggregation for Privacy-Preserving Machine Learning",
// CCS 2017: the t-out-of-n secret sharing primitive, used in its ShareKeys
// and Unmasking rounds).
//
// Field: Z_p with p = 2^256 + 297, the smallest prime above 2^256, so any
// 32-byte secret (read big-endian) is one field element and one polynomial
// of degree t-1 suffices. The secret is the constant term; the other t-1
// coefficients are uniform on Z_p from OpenSSL's CSPRNG (BN_priv_rand_range,
// no "non-zero" forcing). Share i is (x = i + 1, f(x)). Arithmetic is
// OpenSSL BIGNUM, which is not guaranteed constant-time.
//
// Shares are not verifiable: a corrupt share that parses makes reconstruction
// return a wrong secret (or kDataLoss). Bind shares to (sender, recipient,
// round) with the Aead's associated data so they cannot be swapped.

inline constexpr size_t kShamirSecretSize = 32;

// One share: a non-zero x-coordinate and f(x) in Z_p. A share reveals
// nothing about the secret alone, but t of them reveal it, so the value is
// kept in SecretBytes and serialises to SecretBytes. Move-only.
// Thread-safe for const use.
class ShamirShare {
 public:
  // Serialised form: version (1 byte, = 1) || x (4 bytes, big-endian) ||
  // f(x) (33 bytes, big-endian, < p).
  static constexpr size_t kSerializedSize = 38;

  // kInvalidArgument if `bytes` is not a well-formed share: wrong size or
  // version, x == 0, or f(x) >= p. The message never contains share bytes.
  static absl::StatusOr<ShamirShare> Parse(const SecretBytes& bytes);

  ShamirShare(ShamirShare&&) noexcept = default;
  ShamirShare& operator=(ShamirShare&&) noexcept = default;

  // The x-coordinate, i.e. the share's index + 1.
  uint32_t x() const { return x_; }
  SecretBytes Serialize() const;

 private:
  friend absl::StatusOr<std::vector<ShamirShare>> ShamirSplit(
      const SecretBytes&, int, int);
  friend absl::StatusOr<SecretBytes> ShamirReconstruct(
      std::span<const ShamirShare>, int);

  ShamirShare(uint32_t x, SecretBytes y) : x_(x), y_(std::move(y)) {}

  uint32_t x_;
  SecretBytes y_;  // 33 bytes, big-endian, < p
};

// Splits `secret` into `num_shares` shares with x = 1..num_shares, any
// `threshold` of which reconstruct it. kInvalidArgument unless `secret` is 32
// bytes and 2 <= threshold <= num_shares <= 2^20; kInternal if OpenSSL or
// its CSPRNG fails.
absl::StatusOr<std::vector<ShamirShare>> ShamirSplit(const SecretBytes& secret,
                                                     int threshold,
                                                     int num_shares);

// Reconstructs the secret by Lagrange interpolation at 0 over the first
// `threshold` shares (further shares are checked for duplicate x but not
// used). kInvalidArgument if threshold < 2, fewer than `threshold` shares
// are given, or two shares have the same x; kDataLoss if the interpolated
// value is not a 32-byte secret (inconsistent shares); kInternal if OpenSSL
// fails.
absl::StatusOr<SecretBytes> ShamirReconstruct(
    std::span<const ShamirShare> shares, int threshold);

}  // namespace samverka::security
