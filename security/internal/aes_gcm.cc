// security/internal/aes_gcm.cc
#include "security/internal/aes_gcm.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <string>

#include "security/internal/openssl_util.h"

namespace samverka::security::internal {
namespace {

// SP 800-38D section 5.2.1.1: at most 2^39 - 256 bits of plaintext.
constexpr uint64_t kMaxPlaintext = (uint64_t{1} << 36) - 32;
// EVP_*Update take int lengths; feed large inputs in pieces of this size.
constexpr size_t kMaxPiece = size_t{1} << 30;

// Runs EVP_CipherUpdate over `in` in int-sized pieces, writing to `out`.
bool UpdateInPieces(EVP_CIPHER_CTX* ctx, const uint8_t* in, size_t size,
                    uint8_t* out) {
  while (size > 0) {
    const size_t piece = size < kMaxPiece ? size : kMaxPiece;
    int written = 0;
    if (EVP_CipherUpdate(ctx, out, &written, in, static_cast<int>(piece)) !=
            1 ||
        static_cast<size_t>(written) != piece) {
      return false;
    }
    in += piece;
    out += piece;
    size -= piece;
  }
  return true;
}

absl::Status DecryptionFailed() {
  ERR_clear_error();  // nothing about the failure may leak out
  return absl::DataLossError("AEAD decryption failed");
}

}  // namespace

absl::StatusOr<std::string> AesGcmSealWithNonce(
    const SecretBytes& key, std::string_view nonce, std::string_view plaintext,
    std::string_view associated_data) {
  if (key.size() != kGcmKeySize) {
    return absl::InvalidArgumentError("AES-256-GCM key must be 32 bytes");
  }
  if (nonce.size() != kGcmNonceSize) {
    return absl::InvalidArgumentError("AES-GCM nonce must be 12 bytes");
  }
  if (plaintext.size() > kMaxPlaintext) {
    return absl::InvalidArgumentError("AES-GCM plaintext too long");
  }
  if (associated_data.size() > INT_MAX) {
    return absl::InvalidArgumentError("AES-GCM associated data too long");
  }
  const EVP_CIPHER* cipher = Aes256Gcm();
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (cipher == nullptr || ctx == nullptr ||
      EVP_EncryptInit_ex2(ctx.get(), cipher, key.data(), Bytes(nonce),
                          nullptr) != 1) {
    return OpenSslInternalError("AES-GCM encrypt init failed");
  }
  int written = 0;
  if (!associated_data.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &written, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1) {
    return OpenSslInternalError("AES-GCM associated data failed");
  }
  std::string sealed(kGcmNonceSize + plaintext.size() + kGcmTagSize, '\0');
  auto* out = reinterpret_cast<uint8_t*>(sealed.data());
  std::copy(nonce.begin(), nonce.end(), sealed.begin());
  if (!UpdateInPieces(ctx.get(), Bytes(plaintext), plaintext.size(),
                      out + kGcmNonceSize) ||
      EVP_EncryptFinal_ex(ctx.get(), out + kGcmNonceSize + plaintext.size(),
                          &written) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kGcmTagSize,
                          out + kGcmNonceSize + plaintext.size()) != 1) {
    return OpenSslInternalError("AES-GCM encryption failed");
  }
  return sealed;
}

absl::StatusOr<std::string> AesGcmOpen(const SecretBytes& key,
                                       std::string_view sealed,
                                       std::string_view associated_data) {
  if (key.size() != kGcmKeySize ||
      sealed.size() < kGcmNonceSize + kGcmTagSize ||
      associated_data.size() > INT_MAX) {
    return DecryptionFailed();
  }
  const std::string_view nonce = sealed.substr(0, kGcmNonceSize);
  const std::string_view ciphertext =
      sealed.substr(kGcmNonceSize, sealed.size() - kGcmNonceSize - kGcmTagSize);
  std::array<uint8_t, kGcmTagSize> tag;
  std::copy(sealed.end() - kGcmTagSize, sealed.end(), tag.begin());
  if (ciphertext.size() > kMaxPlaintext) return DecryptionFailed();

  const EVP_CIPHER* cipher = Aes256Gcm();
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int written = 0;
  if (cipher == nullptr || ctx == nullptr ||
      EVP_DecryptInit_ex2(ctx.get(), cipher, key.data(), Bytes(nonce),
                          nullptr) != 1 ||
      (!associated_data.empty() &&
       EVP_DecryptUpdate(ctx.get(), nullptr, &written, Bytes(associated_data),
                         static_cast<int>(associated_data.size())) != 1)) {
    return DecryptionFailed();
  }
  std::string plaintext(ciphertext.size(), '\0');
  auto* out = reinterpret_cast<uint8_t*>(plaintext.data());
  // The final call compares the tag in constant time (CRYPTO_memcmp).
  if (!UpdateInPieces(ctx.get(), Bytes(ciphertext), ciphertext.size(), out) ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kGcmTagSize,
                          tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out + ciphertext.size(), &written) != 1) {
    // Unauthenticated plaintext must not survive in freed memory.
    if (!plaintext.empty()) OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return DecryptionFailed();
  }
  return plaintext;
}

}  // namespace samverka::security::internal
