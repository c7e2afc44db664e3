// security/x25519.cc
#include "security/x25519.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <span>
#include <string>
#include <utility>

#include "common/status_macros.h"

namespace samverka::security {
namespace {

using internal::EvpPkeyCtxPtr;
using internal::EvpPkeyPtr;

}  // namespace

absl::StatusOr<X25519PublicKey> X25519PublicKey::FromBytes(
    std::span<const uint8_t> raw) {
  if (raw.size() != kSize) {
    return absl::InvalidArgumentError(
        "X25519 public key must be 32 bytes, got " +
        std::to_string(raw.size()));
  }
  std::array<uint8_t, kSize> bytes;
  std::copy(raw.begin(), raw.end(), bytes.begin());
  return X25519PublicKey(bytes);
}

absl::StatusOr<X25519PublicKey> X25519PublicKey::FromBytes(
    std::string_view raw) {
  return FromBytes(std::span<const uint8_t>(internal::Bytes(raw), raw.size()));
}

absl::StatusOr<X25519PrivateKey> X25519PrivateKey::Generate() {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx.get()) != 1) {
    return internal::OpenSslInternalError("X25519 keygen init failed");
  }
  EVP_PKEY* raw_key = nullptr;
  if (EVP_PKEY_keygen(ctx.get(), &raw_key) != 1) {
    return internal::OpenSslInternalError("X25519 keygen failed");
  }
  return FromEvpPkey(EvpPkeyPtr(raw_key));
}

absl::StatusOr<X25519PrivateKey> X25519PrivateKey::FromBytes(
    const SecretBytes& raw) {
  if (raw.size() != kSize) {
    return absl::InvalidArgumentError(
        "X25519 private key must be 32 bytes, got " +
        std::to_string(raw.size()));
  }
  EvpPkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr,
                                              raw.data(), raw.size()));
  if (key == nullptr) {
    return internal::OpenSslInternalError("X25519 private key import failed");
  }
  return FromEvpPkey(std::move(key));
}

absl::StatusOr<X25519PrivateKey> X25519PrivateKey::FromEvpPkey(EvpPkeyPtr key) {
  std::array<uint8_t, kSize> public_bytes;
  size_t length = public_bytes.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), public_bytes.data(), &length) !=
          1 ||
      length != kSize) {
    return internal::OpenSslInternalError("X25519 public key export failed");
  }
  return X25519PrivateKey(std::move(key), X25519PublicKey(public_bytes));
}

absl::StatusOr<SecretBytes> Agree(const X25519PrivateKey& own,
                                  const X25519PublicKey& peer) {
  const auto& peer_bytes = peer.bytes();
  EvpPkeyPtr peer_key(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_X25519, nullptr, peer_bytes.data(), peer_bytes.size()));
  if (peer_key == nullptr) {
    return internal::OpenSslInternalError("X25519 peer key import failed");
  }
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(own.key_.get(), nullptr));
  if (ctx == nullptr || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer_key.get()) != 1) {
    return internal::OpenSslInternalError("X25519 derive setup failed");
  }
  SecretBytes shared(X25519PrivateKey::kSize);
  size_t length = shared.size();
  if (EVP_PKEY_derive(ctx.get(), shared.data(), &length) != 1) {
    // OpenSSL's X25519 itself refuses an all-zero result, which is the only
    // way a derive with valid keys fails; report it as the peer's fault.
    return internal::OpenSslError(absl::StatusCode::kInvalidArgument,
                                  "X25519 agreement failed (low-order peer "
                                  "public key?)");
  }
  if (length != shared.size()) {
    return absl::InternalError("X25519 agreement returned a short secret");
  }
  // Defence in depth: check the all-zero result ourselves, in constant time.
  const SecretBytes zeros(X25519PrivateKey::kSize);
  if (shared.Equals(zeros)) {
    return absl::InvalidArgumentError(
        "X25519 shared secret is all zero (low-order peer public key)");
  }
  return shared;
}

}  // namespace samverka::security
