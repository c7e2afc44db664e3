// security/secagg/internal/prg_stream.cc
#include "security/secagg/internal/prg_stream.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <bit>
#include <string>

#include "common/status_macros.h"
#include "security/hkdf.h"

namespace samverka::security::secagg::internal {
namespace {

static_assert(std::endian::native == std::endian::little,
              "stream words are little-endian key-stream bytes");

constexpr std::string_view kStreamSalt = "samverka/secagg/stream/v1";

std::span<uint8_t> AsBytes(std::span<uint64_t> words) {
  return {reinterpret_cast<uint8_t*>(words.data()), words.size_bytes()};
}

}  // namespace

absl::StatusOr<PrgStream> PrgStream::Create(const SecretBytes& seed,
                                            std::string_view context) {
  if (seed.size() != 32) {
    return absl::InvalidArgumentError("stream seed must be 32 bytes, got " +
                                      std::to_string(seed.size()));
  }
  if (context.empty()) {
    return absl::InvalidArgumentError("stream context must not be empty");
  }
  SV_ASSIGN_OR_RETURN(SecretBytes key,
                      HkdfSha256(seed, kStreamSalt, context,
                                 security::internal::AesCtrStream::kKeySize));
  constexpr std::array<uint8_t, security::internal::AesCtrStream::kIvSize>
      kZeroIv = {};
  SV_ASSIGN_OR_RETURN(security::internal::AesCtrStream stream,
                      security::internal::AesCtrStream::Create(key, kZeroIv));
  return PrgStream(std::move(stream));
}

PrgStream::~PrgStream() { OPENSSL_cleanse(buffer_.data(), sizeof(buffer_)); }

absl::Status PrgStream::Fill(std::span<uint64_t> out) {
  // Use up buffered words first so Fill and Next read one stream.
  while (!out.empty() && next_ < kBufferWords) {
    out.front() = buffer_[next_++];
    out = out.subspan(1);
  }
  if (out.empty()) return absl::OkStatus();
  return stream_.Generate(AsBytes(out));
}

absl::StatusOr<uint64_t> PrgStream::Next() {
  if (next_ == kBufferWords) {
    SV_RETURN_IF_ERROR(stream_.Generate(AsBytes(std::span<uint64_t>(buffer_))));
    next_ = 0;
  }
  return buffer_[next_++];
}

absl::StatusOr<uint64_t> PrgStream::UniformBelow(uint64_t bound) {
  if (bound == 0) return absl::InvalidArgumentError("bound must be positive");
  // D. Lemire, "Fast Random Integer Generation in an Interval", TOMACS 2019.
  SV_ASSIGN_OR_RETURN(uint64_t word, Next());
  unsigned __int128 product = static_cast<unsigned __int128>(word) * bound;
  uint64_t low = static_cast<uint64_t>(product);
  if (low < bound) {
    const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
    while (low < threshold) {
      SV_ASSIGN_OR_RETURN(word, Next());
      product = static_cast<unsigned __int128>(word) * bound;
      low = static_cast<uint64_t>(product);
    }
  }
  return static_cast<uint64_t>(product >> 64);
}

}  // namespace samverka::security::secagg::internal
