// security/shamir.cc
//
// Shamir secret sharing over Z_p, p = 2^256 + 297 (see shamir.h for the
// papers). Split evaluates f by Horner's rule; Reconstruct computes
//   f(0) = sum_i y_i * lambda_i,  lambda_i = prod_{m != i} x_m / (x_m - x_i),
// written as lambda_i = (prod_m x_m) / (x_i * prod_{m != i} (x_m - x_i)) so
// each coefficient costs one modular inverse.
#include "security/shamir.h"

#include <openssl/bn.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <unordered_set>
#include <utility>

#include "common/status_macros.h"
#include "security/internal/openssl_util.h"

namespace samverka::security {
namespace {

using internal::BignumPtr;
using internal::BnCtxPtr;

constexpr uint8_t kShareVersion = 1;
constexpr size_t kFieldBytes = 33;  // p has 257 bits
constexpr int kMaxShares = 1 << 20;
// p = 2^256 + 297, the smallest prime above 2^256.
constexpr char kPrimeHex[] =
    "10000000000000000000000000000000000000000000000000000000000000129";

// A new BIGNUM with BN_FLG_CONSTTIME set, for values derived from secrets
// (OpenSSL then prefers its constant-time code paths where it has them).
BignumPtr NewSecretBignum() {
  BignumPtr bn(BN_secure_new());
  if (bn != nullptr) BN_set_flags(bn.get(), BN_FLG_CONSTTIME);
  return bn;
}

absl::StatusOr<BignumPtr> Prime() {
  BIGNUM* p = nullptr;
  if (BN_hex2bn(&p, kPrimeHex) == 0) {
    return internal::OpenSslInternalError("BN_hex2bn failed");
  }
  return BignumPtr(p);
}

// Big-endian bytes of `value` (< p) into a 33-byte SecretBytes.
absl::StatusOr<SecretBytes> FieldToBytes(const BIGNUM* value) {
  SecretBytes out(kFieldBytes);
  if (BN_bn2binpad(value, out.data(), static_cast<int>(out.size())) !=
      static_cast<int>(kFieldBytes)) {
    return internal::OpenSslInternalError("BN_bn2binpad failed");
  }
  return out;
}

// *acc = *acc * x + c mod p, for a small public x.
bool HornerStep(BIGNUM* acc, uint32_t x, const BIGNUM* c, const BIGNUM* p,
                BN_CTX* ctx) {
  return BN_mul_word(acc, x) == 1 && BN_add(acc, acc, c) == 1 &&
         BN_nnmod(acc, acc, p, ctx) == 1;
}

// prod_{m != i} (x_m - x_i) * x_i mod p, all public values.
bool Denominator(std::span<const ShamirShare> shares, size_t i, const BIGNUM* p,
                 BIGNUM* out, BN_CTX* ctx) {
  const int64_t xi = shares[i].x();
  bool negative = false;
  if (BN_set_word(out, static_cast<BN_ULONG>(xi)) != 1) return false;
  for (size_t m = 0; m < shares.size(); ++m) {
    if (m == i) continue;
    const int64_t diff = static_cast<int64_t>(shares[m].x()) - xi;
    if (diff < 0) negative = !negative;
    if (BN_mul_word(out, static_cast<BN_ULONG>(std::llabs(diff))) != 1 ||
        BN_nnmod(out, out, p, ctx) != 1) {
      return false;
    }
  }
  return !negative || BN_is_zero(out) || BN_sub(out, p, out) == 1;
}

}  // namespace

absl::StatusOr<ShamirShare> ShamirShare::Parse(const SecretBytes& bytes) {
  if (bytes.size() != kSerializedSize) {
    return absl::InvalidArgumentError("Shamir share must be 38 bytes, got " +
                                      std::to_string(bytes.size()));
  }
  const uint8_t* b = bytes.data();
  if (b[0] != kShareVersion) {
    return absl::InvalidArgumentError("Shamir share has unknown version " +
                                      std::to_string(b[0]));
  }
  const uint32_t x = (uint32_t{b[1]} << 24) | (uint32_t{b[2]} << 16) |
                     (uint32_t{b[3]} << 8) | uint32_t{b[4]};
  if (x == 0) return absl::InvalidArgumentError("Shamir share has x = 0");
  SecretBytes y = SecretBytes::CopyFrom(bytes.span().subspan(5));
  BignumPtr value = NewSecretBignum();
  SV_ASSIGN_OR_RETURN(BignumPtr p, Prime());
  if (value == nullptr ||
      BN_bin2bn(y.data(), static_cast<int>(y.size()), value.get()) == nullptr) {
    return internal::OpenSslInternalError("BN_bin2bn failed");
  }
  if (BN_cmp(value.get(), p.get()) >= 0) {
    return absl::InvalidArgumentError(
        "Shamir share value is not a field element");
  }
  return ShamirShare(x, std::move(y));
}

SecretBytes ShamirShare::Serialize() const {
  SecretBytes out(kSerializedSize);
  uint8_t* b = out.data();
  b[0] = kShareVersion;
  b[1] = static_cast<uint8_t>(x_ >> 24);
  b[2] = static_cast<uint8_t>(x_ >> 16);
  b[3] = static_cast<uint8_t>(x_ >> 8);
  b[4] = static_cast<uint8_t>(x_);
  std::copy(y_.data(), y_.data() + y_.size(), b + 5);
  return out;
}

absl::StatusOr<std::vector<ShamirShare>> ShamirSplit(const SecretBytes& secret,
                                                     int threshold,
                                                     int num_shares) {
  if (secret.size() != kShamirSecretSize) {
    return absl::InvalidArgumentError("Shamir secret must be 32 bytes, got " +
                                      std::to_string(secret.size()));
  }
  if (threshold < 2 || threshold > num_shares || num_shares > kMaxShares) {
    return absl::InvalidArgumentError(
        "Shamir parameters need 2 <= threshold <= num_shares <= 2^20, got "
        "threshold " +
        std::to_string(threshold) + ", num_shares " +
        std::to_string(num_shares));
  }
  SV_ASSIGN_OR_RETURN(BignumPtr p, Prime());
  BnCtxPtr ctx(BN_CTX_secure_new());
  if (ctx == nullptr) return internal::OpenSslInternalError("BN_CTX_new");

  // coefficients[0] is the secret, the rest uniform on [0, p).
  std::vector<BignumPtr> coefficients;
  coefficients.reserve(threshold);
  for (int j = 0; j < threshold; ++j) {
    BignumPtr c = NewSecretBignum();
    if (c == nullptr) return internal::OpenSslInternalError("BN_new");
    const bool ok =
        j == 0 ? BN_bin2bn(secret.data(), static_cast<int>(secret.size()),
                           c.get()) != nullptr
               : BN_priv_rand_range_ex(c.get(), p.get(), 0, ctx.get()) == 1;
    if (!ok) return internal::OpenSslInternalError("Shamir coefficient");
    coefficients.push_back(std::move(c));
  }

  std::vector<ShamirShare> shares;
  shares.reserve(num_shares);
  BignumPtr y = NewSecretBignum();
  if (y == nullptr) return internal::OpenSslInternalError("BN_new");
  for (int i = 0; i < num_shares; ++i) {
    const uint32_t x = static_cast<uint32_t>(i) + 1;
    if (BN_copy(y.get(), coefficients.back().get()) == nullptr) {
      return internal::OpenSslInternalError("BN_copy");
    }
    for (int j = threshold - 2; j >= 0; --j) {
      if (!HornerStep(y.get(), x, coefficients[j].get(), p.get(), ctx.get())) {
        return internal::OpenSslInternalError("Shamir evaluation");
      }
    }
    SV_ASSIGN_OR_RETURN(SecretBytes y_bytes, FieldToBytes(y.get()));
    shares.push_back(ShamirShare(x, std::move(y_bytes)));
  }
  return shares;
}

absl::StatusOr<SecretBytes> ShamirReconstruct(
    std::span<const ShamirShare> shares, int threshold) {
  if (threshold < 2) {
    return absl::InvalidArgumentError("Shamir threshold must be at least 2");
  }
  if (shares.size() < static_cast<size_t>(threshold)) {
    return absl::InvalidArgumentError(
        "too few Shamir shares: " + std::to_string(shares.size()) +
        " given, threshold " + std::to_string(threshold));
  }
  std::unordered_set<uint32_t> seen;
  for (const ShamirShare& share : shares) {
    if (!seen.insert(share.x()).second) {
      return absl::InvalidArgumentError("duplicate Shamir share x = " +
                                        std::to_string(share.x()));
    }
  }
  const std::span<const ShamirShare> used = shares.first(threshold);

  SV_ASSIGN_OR_RETURN(BignumPtr p, Prime());
  BnCtxPtr ctx(BN_CTX_secure_new());
  BignumPtr x_product(BN_new());  // prod_m x_m, public
  BignumPtr denominator(BN_new());
  BignumPtr lambda(BN_new());
  BignumPtr term = NewSecretBignum();
  BignumPtr y = NewSecretBignum();
  BignumPtr sum = NewSecretBignum();
  if (ctx == nullptr || x_product == nullptr || denominator == nullptr ||
      lambda == nullptr || term == nullptr || y == nullptr || sum == nullptr ||
      BN_one(x_product.get()) != 1) {
    return internal::OpenSslInternalError("Shamir reconstruct setup");
  }
  BN_zero(sum.get());
  for (const ShamirShare& share : used) {
    if (BN_mul_word(x_product.get(), share.x()) != 1 ||
        BN_nnmod(x_product.get(), x_product.get(), p.get(), ctx.get()) != 1) {
      return internal::OpenSslInternalError("Shamir reconstruct");
    }
  }
  for (size_t i = 0; i < used.size(); ++i) {
    // lambda_i = x_product / (x_i * prod_{m != i} (x_m - x_i)); distinct
    // non-zero x below p make the denominator invertible.
    if (!Denominator(used, i, p.get(), denominator.get(), ctx.get()) ||
        BN_mod_inverse(lambda.get(), denominator.get(), p.get(), ctx.get()) ==
            nullptr ||
        BN_mod_mul(lambda.get(), lambda.get(), x_product.get(), p.get(),
                   ctx.get()) != 1 ||
        BN_bin2bn(used[i].y_.data(), static_cast<int>(used[i].y_.size()),
                  y.get()) == nullptr ||
        BN_mod_mul(term.get(), y.get(), lambda.get(), p.get(), ctx.get()) !=
            1 ||
        BN_mod_add(sum.get(), sum.get(), term.get(), p.get(), ctx.get()) != 1) {
      return internal::OpenSslInternalError("Shamir reconstruct");
    }
  }
  if (BN_num_bits(sum.get()) > static_cast<int>(8 * kShamirSecretSize)) {
    return absl::DataLossError(
        "Shamir shares are inconsistent: the interpolated value is not a "
        "32-byte secret");
  }
  SecretBytes secret(kShamirSecretSize);
  if (BN_bn2binpad(sum.get(), secret.data(), static_cast<int>(secret.size())) !=
      static_cast<int>(kShamirSecretSize)) {
    return internal::OpenSslInternalError("BN_bn2binpad failed");
  }
  return secret;
}

}  // namespace samverka::security
