// security/internal/aes_ctr.cc
#include "security/internal/aes_ctr.h"

#include <openssl/evp.h>

#include <algorithm>
#include <utility>

namespace samverka::security::internal {
namespace {

// A block of zeros to encrypt into the output. 64 KiB: large enough that the
// per-call EVP overhead is negligible, small enough to stay in L2.
constexpr size_t kZeroBlockSize = 64 * 1024;
alignas(64) constexpr uint8_t kZeros[kZeroBlockSize] = {};

}  // namespace

absl::StatusOr<AesCtrStream> AesCtrStream::Create(const SecretBytes& key,
                                                  std::span<const uint8_t> iv) {
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError("AES-256-CTR key must be 32 bytes");
  }
  if (iv.size() != kIvSize) {
    return absl::InvalidArgumentError("AES-CTR IV must be 16 bytes");
  }
  const EVP_CIPHER* cipher = Aes256Ctr();
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (cipher == nullptr || ctx == nullptr ||
      EVP_EncryptInit_ex2(ctx.get(), cipher, key.data(), iv.data(), nullptr) !=
          1) {
    return OpenSslInternalError("AES-CTR init failed");
  }
  return AesCtrStream(std::move(ctx));
}

absl::Status AesCtrStream::Apply(std::span<const uint8_t> in,
                                 std::span<uint8_t> out) {
  if (in.size() != out.size()) {
    return absl::InvalidArgumentError("AES-CTR input and output sizes differ");
  }
  constexpr size_t kMaxPiece = size_t{1} << 30;  // EVP lengths are int
  while (!in.empty()) {
    const size_t piece = std::min(in.size(), kMaxPiece);
    int written = 0;
    if (EVP_EncryptUpdate(ctx_.get(), out.data(), &written, in.data(),
                          static_cast<int>(piece)) != 1 ||
        static_cast<size_t>(written) != piece) {
      return OpenSslInternalError("AES-CTR encryption failed");
    }
    in = in.subspan(piece);
    out = out.subspan(piece);
  }
  return absl::OkStatus();
}

absl::Status AesCtrStream::Generate(std::span<uint8_t> out) {
  while (!out.empty()) {
    const size_t piece = std::min(out.size(), kZeroBlockSize);
    int written = 0;
    if (EVP_EncryptUpdate(ctx_.get(), out.data(), &written, kZeros,
                          static_cast<int>(piece)) != 1 ||
        static_cast<size_t>(written) != piece) {
      return OpenSslInternalError("AES-CTR key stream failed");
    }
    out = out.subspan(piece);
  }
  return absl::OkStatus();
}

}  // namespace samverka::security::internal
