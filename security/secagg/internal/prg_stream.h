// security/secagg/internal/prg_stream.h
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"
#include "security/internal/aes_ctr.h"
#include "security/secret_bytes.h"

namespace samverka::security::secagg::internal {

// A deterministic stream of uniform 64-bit words for SecAgg's non-mask
// randomness: the Fisher-Yates shuffle of the neighbour graph and the coin
// flips of stochastic rounding. Built like the mask PRG of security/prg.h:
// key = HKDF-SHA256(ikm = seed, salt = "samverka/secagg/stream/v1",
// info = context), words = AES-256-CTR key stream (zero IV), little-endian.
// A separate salt keeps these streams independent of every mask stream.
// Not thread-safe (it is a stream); move-only.
class PrgStream {
 public:
  // kInvalidArgument if `seed` is not 32 bytes or `context` is empty;
  // kInternal if OpenSSL fails.
  static absl::StatusOr<PrgStream> Create(const SecretBytes& seed,
                                          std::string_view context);

  PrgStream(PrgStream&&) noexcept = default;
  PrgStream& operator=(PrgStream&&) noexcept = default;
  ~PrgStream();

  // Fills `out` with the next words. kInternal if OpenSSL fails.
  absl::Status Fill(std::span<uint64_t> out);
  // The next word.
  absl::StatusOr<uint64_t> Next();
  // A uniform integer in [0, bound), bound >= 1, without modulo bias
  // (Lemire's multiply-and-reject method).
  absl::StatusOr<uint64_t> UniformBelow(uint64_t bound);

 private:
  static constexpr size_t kBufferWords = 512;

  explicit PrgStream(security::internal::AesCtrStream stream)
      : stream_(std::move(stream)) {}

  security::internal::AesCtrStream stream_;
  std::array<uint64_t, kBufferWords> buffer_{};
  size_t next_ = kBufferWords;  // buffer_ is empty at first
};

// A uniform double in [0, 1) from the top 53 bits of `word`. (Through
// int64_t: the value is below 2^53, and a signed conversion is one
// instruction where an unsigned one is a branch.)
inline double UnitInterval(uint64_t word) {
  return static_cast<double>(static_cast<int64_t>(word >> 11)) * 0x1.0p-53;
}

}  // namespace samverka::security::secagg::internal
