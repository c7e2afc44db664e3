#include "security/secagg/consent.h"

#include <openssl/crypto.h>

#include "absl/strings/str_cat.h"
#include "common/codec.h"
#include "security/hkdf.h"

namespace samverka::security::secagg {

std::string ConsentInstance(std::string_view serialized_roster) {
  return Sha256Hex(serialized_roster);
}

absl::StatusOr<SecretBytes> DeriveConsentSeed(const SecretBytes& site_key,
                                              std::string_view instance) {
  if (site_key.size() < kConsentSeedBytes) {
    return absl::InvalidArgumentError("the site's consent key must have at least 32 bytes");
  }
  if (instance.empty()) return absl::InvalidArgumentError("the consent instance is empty");
  return HkdfSha256(site_key, "samverka/consent/v1", instance, kConsentSeedBytes);
}

std::string ConsentCommitment(std::string_view instance, const SecretBytes& seed) {
  std::string preimage = absl::StrCat("samverka/consent-commitment/v1", std::string(instance));
  preimage.append(reinterpret_cast<const char*>(seed.data()), seed.size());
  std::string commitment = Sha256Hex(preimage);
  OPENSSL_cleanse(preimage.data(), preimage.size());
  return commitment;
}

absl::Status CheckConsent(std::string_view instance, const SecretBytes& seed,
                          std::string_view commitment) {
  if (seed.size() != kConsentSeedBytes) {
    return absl::InvalidArgumentError("a consent seed has 32 bytes");
  }
  const std::string expected = ConsentCommitment(instance, seed);
  if (commitment.size() != expected.size() ||
      CRYPTO_memcmp(commitment.data(), expected.data(), expected.size()) != 0) {
    return absl::InvalidArgumentError(
        "the consent seed does not open the commitment sent with the masked input");
  }
  return absl::OkStatus();
}

std::string ConsentMaskContext(std::string_view instance) {
  return absl::StrCat("consent/", std::string(instance));
}

absl::Status ApplyConsentMask(ModularVector& values, const SecretBytes& seed,
                              std::string_view instance, MaskSign sign) {
  return values.AddMask(seed, ConsentMaskContext(instance), sign);
}

}  // namespace samverka::security::secagg
