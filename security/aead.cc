// security/aead.cc
#include "security/aead.h"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/status_macros.h"
#include "security/internal/aes_gcm.h"
#include "security/internal/openssl_util.h"

namespace samverka::security {
namespace {

class AesGcmAead final : public Aead {
 public:
  explicit AesGcmAead(SecretBytes key) : key_(std::move(key)) {}

  absl::StatusOr<std::string> Seal(
      std::string_view plaintext,
      std::string_view associated_data) const override {
    std::array<uint8_t, internal::kGcmNonceSize> nonce;
    SV_RETURN_IF_ERROR(internal::RandomBytes(nonce));
    return internal::AesGcmSealWithNonce(
        key_,
        std::string_view(reinterpret_cast<const char*>(nonce.data()),
                         nonce.size()),
        plaintext, associated_data);
  }

  absl::StatusOr<std::string> Open(
      std::string_view sealed,
      std::string_view associated_data) const override {
    return internal::AesGcmOpen(key_, sealed, associated_data);
  }

 private:
  const SecretBytes key_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Aead>> Aead::Create(const SecretBytes& key) {
  if (key.size() != internal::kGcmKeySize) {
    return absl::InvalidArgumentError("AES-256-GCM key must be 32 bytes, got " +
                                      std::to_string(key.size()));
  }
  return std::make_unique<AesGcmAead>(key.Clone());
}

}  // namespace samverka::security
