// security/prg.cc
#include "security/prg.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <bit>
#include <string>

#include "common/status_macros.h"
#include "security/hkdf.h"
#include "security/internal/aes_ctr.h"

namespace samverka::security {
namespace {

// Words are the key-stream bytes in little-endian order; on a little-endian
// host that is a plain reinterpretation, which is what lets the expansion
// run at AES-CTR speed. A big-endian port would byte-swap here.
static_assert(std::endian::native == std::endian::little,
              "PRG words are defined as little-endian key-stream bytes");

constexpr std::string_view kPrgSalt = "samverka/prg/v1";
// AddMasks works through `values` in blocks of this many bytes: the block
// and one key-stream block fit in L1 together, and 16 KiB per EVP call is
// the block size `openssl speed -bytes 16384` measures the cipher at.
constexpr size_t kBlockBytes = 16 * 1024;

template <typename Word>
constexpr std::string_view WidthTag() {
  // Fixed length, so tag || context is unambiguous.
  return sizeof(Word) == 4 ? std::string_view("w32:")
                           : std::string_view("w64:");
}

template <typename Word>
std::span<uint8_t> AsBytes(std::span<Word> words) {
  return {reinterpret_cast<uint8_t*>(words.data()), words.size_bytes()};
}

// The AES-CTR stream for (seed, context) at word width Word.
template <typename Word>
absl::StatusOr<internal::AesCtrStream> OpenStream(const SecretBytes& seed,
                                                  std::string_view context) {
  if (seed.size() != kPrgSeedSize) {
    return absl::InvalidArgumentError("PRG seed must be 32 bytes, got " +
                                      std::to_string(seed.size()));
  }
  if (context.empty()) {
    return absl::InvalidArgumentError("PRG context must not be empty");
  }
  std::string info(WidthTag<Word>());
  info.append(context);
  SV_ASSIGN_OR_RETURN(
      SecretBytes key,
      HkdfSha256(seed, kPrgSalt, info, internal::AesCtrStream::kKeySize));
  constexpr std::array<uint8_t, internal::AesCtrStream::kIvSize> kZeroIv = {};
  return internal::AesCtrStream::Create(key, kZeroIv);
}

template <typename Word>
absl::StatusOr<std::vector<Word>> Expand(const SecretBytes& seed,
                                         std::string_view context,
                                         size_t count) {
  SV_ASSIGN_OR_RETURN(internal::AesCtrStream stream,
                      OpenStream<Word>(seed, context));
  std::vector<Word> words(count);
  SV_RETURN_IF_ERROR(stream.Generate(AsBytes(std::span<Word>(words))));
  return words;
}

// values[i] += (or -=) mask[i] for i < n. Unsigned arithmetic wraps, which
// is exactly mod 2^32 / 2^64. The fixed-size inner loop over non-aliasing
// pointers lets GCC vectorise at -O2 (its -O2 cost model only vectorises
// loops with a known trip count).
template <typename Word, bool kSubtract>
void Combine(Word* __restrict values, const Word* __restrict mask, size_t n) {
  constexpr size_t kBlock = 16;
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    for (size_t j = 0; j < kBlock; ++j) {
      if constexpr (kSubtract) {
        values[i + j] -= mask[i + j];
      } else {
        values[i + j] += mask[i + j];
      }
    }
  }
  for (; i < n; ++i) {
    if constexpr (kSubtract) {
      values[i] -= mask[i];
    } else {
      values[i] += mask[i];
    }
  }
}

template <typename Word>
absl::Status AddMasksImpl(std::span<Word> values,
                          std::span<const MaskTerm> masks) {
  std::vector<internal::AesCtrStream> streams;
  streams.reserve(masks.size());
  for (const MaskTerm& term : masks) {
    if (term.seed == nullptr) {
      return absl::InvalidArgumentError("mask term without a seed");
    }
    SV_ASSIGN_OR_RETURN(internal::AesCtrStream stream,
                        OpenStream<Word>(*term.seed, term.context));
    streams.push_back(std::move(stream));
  }
  constexpr size_t kBlockWords = kBlockBytes / sizeof(Word);
  alignas(64) std::array<Word, kBlockWords> mask;
  absl::Status status = absl::OkStatus();
  for (size_t begin = 0; status.ok() && begin < values.size();
       begin += kBlockWords) {
    const size_t n = std::min(kBlockWords, values.size() - begin);
    Word* const block = values.data() + begin;
    for (size_t i = 0; i < streams.size(); ++i) {
      status = streams[i].Generate(AsBytes(std::span<Word>(mask).first(n)));
      if (!status.ok()) break;
      if (masks[i].sign == MaskSign::kAdd) {
        Combine<Word, /*kSubtract=*/false>(block, mask.data(), n);
      } else {
        Combine<Word, /*kSubtract=*/true>(block, mask.data(), n);
      }
    }
  }
  OPENSSL_cleanse(mask.data(), sizeof(mask));
  return status;
}

template <typename Word>
absl::Status AddMaskImpl(std::span<Word> values, const SecretBytes& seed,
                         std::string_view context, MaskSign sign) {
  const MaskTerm term{&seed, context, sign};
  return AddMasksImpl<Word>(values, std::span<const MaskTerm>(&term, 1));
}

}  // namespace

absl::StatusOr<std::vector<uint32_t>> ExpandMask32(const SecretBytes& seed,
                                                   std::string_view context,
                                                   size_t count) {
  return Expand<uint32_t>(seed, context, count);
}

absl::StatusOr<std::vector<uint64_t>> ExpandMask64(const SecretBytes& seed,
                                                   std::string_view context,
                                                   size_t count) {
  return Expand<uint64_t>(seed, context, count);
}

absl::Status AddMask(std::span<uint32_t> values, const SecretBytes& seed,
                     std::string_view context, MaskSign sign) {
  return AddMaskImpl<uint32_t>(values, seed, context, sign);
}

absl::Status AddMask(std::span<uint64_t> values, const SecretBytes& seed,
                     std::string_view context, MaskSign sign) {
  return AddMaskImpl<uint64_t>(values, seed, context, sign);
}

absl::Status AddMasks(std::span<uint32_t> values,
                      std::span<const MaskTerm> masks) {
  return AddMasksImpl<uint32_t>(values, masks);
}

absl::Status AddMasks(std::span<uint64_t> values,
                      std::span<const MaskTerm> masks) {
  return AddMasksImpl<uint64_t>(values, masks);
}

}  // namespace samverka::security
