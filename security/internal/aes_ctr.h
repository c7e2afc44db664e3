// security/internal/aes_ctr.h
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "security/internal/openssl_util.h"
#include "security/secret_bytes.h"

namespace samverka::security::internal {

// An AES-256-CTR key stream (SP 800-38A section 6.5) over OpenSSL's
// EVP_CIPHER: the 16-byte counter block starts at `iv` and is incremented as
// one big-endian 128-bit integer per block. The PRG in security/prg.h runs it
// with a zero IV; the known-answer test runs it with SP 800-38A's counter.
// Successive calls continue the same stream, at any byte granularity.
// Not thread-safe (it is a stream); move-only.
class AesCtrStream {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kIvSize = 16;

  // kInvalidArgument if `key` is not 32 bytes or `iv` not 16 bytes;
  // kInternal if OpenSSL fails.
  static absl::StatusOr<AesCtrStream> Create(const SecretBytes& key,
                                             std::span<const uint8_t> iv);

  // out = in XOR next key-stream bytes. `in` and `out` must have the same
  // size and may be the same buffer. kInternal if OpenSSL fails.
  absl::Status Apply(std::span<const uint8_t> in, std::span<uint8_t> out);

  // Writes the next out.size() key-stream bytes into `out` (encrypts zeros
  // straight into it, so there is one pass over `out`).
  absl::Status Generate(std::span<uint8_t> out);

 private:
  explicit AesCtrStream(EvpCipherCtxPtr ctx) : ctx_(std::move(ctx)) {}

  EvpCipherCtxPtr ctx_;
};

}  // namespace samverka::security::internal
