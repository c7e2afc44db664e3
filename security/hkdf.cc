// security/hkdf.cc
#include "security/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <string>

#include "common/status_macros.h"
#include "security/internal/hkdf_steps.h"
#include "security/internal/openssl_util.h"

namespace samverka::security {
namespace {

constexpr size_t kSha256Size = 32;
constexpr size_t kMaxOutput = 255 * kSha256Size;  // RFC 5869 section 2.3

absl::Status CheckLength(size_t length) {
  if (length == 0 || length > kMaxOutput) {
    return absl::InvalidArgumentError("HKDF-SHA256 output length " +
                                      std::to_string(length) +
                                      " is not in [1, 8160]");
  }
  return absl::OkStatus();
}

// Runs EVP_KDF "HKDF" with SHA-256 in `mode` (EVP_KDF_HKDF_MODE_*). `salt`
// and `info` are ignored where the mode does not use them.
absl::StatusOr<SecretBytes> RunHkdf(int mode, const SecretBytes& key,
                                    std::string_view salt,
                                    std::string_view info, size_t length) {
  EVP_KDF* kdf = internal::Hkdf();
  if (kdf == nullptr) return internal::OpenSslInternalError("no HKDF");
  internal::EvpKdfCtxPtr ctx(EVP_KDF_CTX_new(kdf));
  if (ctx == nullptr) return internal::OpenSslInternalError("HKDF context");

  char digest[] = "SHA256";
  OSSL_PARAM params[6];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[n++] =
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  // OSSL_PARAM wants non-const pointers; OpenSSL only reads these buffers.
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(key.data()), key.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();

  SecretBytes out(length);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return internal::OpenSslInternalError("HKDF-SHA256 derive failed");
  }
  return out;
}

}  // namespace

absl::StatusOr<SecretBytes> HkdfSha256(const SecretBytes& ikm,
                                       std::string_view salt,
                                       std::string_view info, size_t length) {
  if (ikm.empty()) return absl::InvalidArgumentError("HKDF ikm is empty");
  SV_RETURN_IF_ERROR(CheckLength(length));
  return RunHkdf(EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND, ikm, salt, info, length);
}

namespace internal {

absl::StatusOr<SecretBytes> HkdfSha256Extract(const SecretBytes& ikm,
                                              std::string_view salt) {
  if (ikm.empty()) return absl::InvalidArgumentError("HKDF ikm is empty");
  return RunHkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, ikm, salt, {}, kSha256Size);
}

absl::StatusOr<SecretBytes> HkdfSha256Expand(const SecretBytes& prk,
                                             std::string_view info,
                                             size_t length) {
  if (prk.size() < kSha256Size) {
    return absl::InvalidArgumentError("HKDF prk is shorter than 32 bytes");
  }
  SV_RETURN_IF_ERROR(CheckLength(length));
  return RunHkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk, {}, info, length);
}

}  // namespace internal
}  // namespace samverka::security
