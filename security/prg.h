// security/prg.h
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "security/secret_bytes.h"

namespace samverka::security {

// The SecAgg mask generator PRG(seed) (Bonawitz et al., "Practical Secure
// Aggregation for Privacy-Preserving Machine Learning", CCS 2017: the PRG of
// its cryptographic-primitives section, used for self and pairwise masks):
// expands a 32-byte seed (a self-mask seed, or a pairwise X25519 secret)
// into words uniform on Z_2^32 or Z_2^64. Both moduli are powers of two, so
// every key-stream word is used as is, with no rejection.
//
// Construction: key = HKDF-SHA256(ikm = seed, salt = "samverka/prg/v1",
// info = "w32:" or "w64:" || context); words = AES-256-CTR key stream under
// that key with an all-zero 128-bit initial counter block, read as
// little-endian words. `context` separates domains (e.g. "self-mask/round 7"
// vs "pairwise/round 7/3-9"): one seed under two contexts, or two widths,
// gives independent streams. All functions are deterministic and
// thread-safe (no shared state).
//
// Errors, for every function: kInvalidArgument if `seed` is not 32 bytes or
// `context` is empty; kInternal if OpenSSL fails.

inline constexpr size_t kPrgSeedSize = 32;

// Whether AddMask adds or subtracts the mask (mod 2^32 or 2^64).
enum class MaskSign { kAdd, kSubtract };

// The first `count` words of the stream for (`seed`, `context`).
absl::StatusOr<std::vector<uint32_t>> ExpandMask32(const SecretBytes& seed,
                                                   std::string_view context,
                                                   size_t count);
absl::StatusOr<std::vector<uint64_t>> ExpandMask64(const SecretBytes& seed,
                                                   std::string_view context,
                                                   size_t count);

// values[i] += (or -=) ExpandMask32(seed, context, values.size())[i], in
// place and mod 2^32, without materialising the whole mask (the mask is
// made in 16 KiB blocks, which are wiped after use). On error `values` may
// be partly masked and must be discarded.
absl::Status AddMask(std::span<uint32_t> values, const SecretBytes& seed,
                     std::string_view context, MaskSign sign);
// The same over Z_2^64 with the ExpandMask64 stream.
absl::Status AddMask(std::span<uint64_t> values, const SecretBytes& seed,
                     std::string_view context, MaskSign sign);

// One mask of an AddMasks call. Non-owning: `seed` and `context` must
// outlive the call.
struct MaskTerm {
  const SecretBytes* seed = nullptr;
  std::string_view context;
  MaskSign sign = MaskSign::kAdd;
};

// The same result as AddMask for each term in turn, in one pass over
// `values`: each 16 KiB block of `values` stays in cache while every term's
// next key-stream block is added to it, so the cost is the key stream plus
// one read and write of `values` rather than one per term (SecAgg masks an
// input with its self mask and k pairwise masks; the server removes
// hundreds). Opens every term's stream first: nothing is changed if a seed
// or context is invalid; on a later (OpenSSL) error `values` may be partly
// masked and must be discarded.
absl::Status AddMasks(std::span<uint32_t> values,
                      std::span<const MaskTerm> masks);
absl::Status AddMasks(std::span<uint64_t> values,
                      std::span<const MaskTerm> masks);

}  // namespace samverka::security
