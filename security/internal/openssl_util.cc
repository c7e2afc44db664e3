// security/internal/openssl_util.cc
#include "security/internal/openssl_util.h"

#include <openssl/err.h>
#include <openssl/rand.h>

#include <string>

namespace samverka::security::internal {

absl::Status OpenSslError(absl::StatusCode code, std::string_view what) {
  const unsigned long error = ERR_get_error();  // oldest queued error
  ERR_clear_error();
  // Debian's Abseil has its own string_view, so pass std::string.
  if (error == 0) return absl::Status(code, std::string(what));
  char reason[256];
  ERR_error_string_n(error, reason, sizeof(reason));
  return absl::Status(code, std::string(what) + ": " + reason);
}

absl::Status OpenSslInternalError(std::string_view what) {
  return OpenSslError(absl::StatusCode::kInternal, what);
}

absl::Status RandomBytes(std::span<uint8_t> out) {
  // RAND_bytes takes an int length; draw in bounded pieces.
  constexpr size_t kMaxPiece = 1 << 30;
  while (!out.empty()) {
    const size_t piece = out.size() < kMaxPiece ? out.size() : kMaxPiece;
    if (RAND_bytes(out.data(), static_cast<int>(piece)) != 1) {
      return OpenSslInternalError("RAND_bytes failed");
    }
    out = out.subspan(piece);
  }
  return absl::OkStatus();
}

const EVP_CIPHER* Aes256Gcm() {
  // Fetched once and deliberately kept for the life of the process.
  static const EVP_CIPHER* const cipher =
      EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

const EVP_CIPHER* Aes256Ctr() {
  static const EVP_CIPHER* const cipher =
      EVP_CIPHER_fetch(nullptr, "AES-256-CTR", nullptr);
  return cipher;
}

EVP_KDF* Hkdf() {
  // EVP_KDF_CTX_new takes a non-const EVP_KDF; it only up-refs it.
  static EVP_KDF* const kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  return kdf;
}

}  // namespace samverka::security::internal
