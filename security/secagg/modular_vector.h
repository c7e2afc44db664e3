// security/secagg/modular_vector.h
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "security/prg.h"
#include "security/secret_bytes.h"

namespace samverka::security::secagg {

// A vector over Z_2^32 or Z_2^64, the ring SecAgg sums in: encoded inputs,
// masked inputs and the running sum. Arithmetic wraps (mod 2^bits).
// A value type; thread-safe for const use.
class ModularVector {
 public:
  // An empty vector over Z_2^32.
  ModularVector() = default;
  // `size` zeros over Z_2^`bits`; `bits` must be 32 or 64 (asserted).
  static ModularVector Zeros(int bits, size_t size);
  static ModularVector FromWords(std::vector<uint32_t> words);
  static ModularVector FromWords(std::vector<uint64_t> words);

  int bits() const { return bits_; }
  size_t size() const {
    return bits_ == 32 ? words32_.size() : words64_.size();
  }
  // Element i as a uint64_t (< 2^bits).
  uint64_t Get(size_t i) const {
    return bits_ == 32 ? words32_[i] : words64_[i];
  }
  // Sets element i to `value` mod 2^bits.
  void Set(size_t i, uint64_t value);

  // The words; only the accessor matching bits() is non-empty.
  std::span<const uint32_t> words32() const { return words32_; }
  std::span<const uint64_t> words64() const { return words64_; }

  // this += other, elementwise mod 2^bits. kInvalidArgument if the widths or
  // sizes differ.
  absl::Status Add(const ModularVector& other);
  // this += (or -=) PRG(seed, context) in place (security/prg.h AddMask, at
  // AES-CTR speed). Errors as AddMask.
  absl::Status AddMask(const SecretBytes& seed, std::string_view context,
                       MaskSign sign);
  // this += (or -=) every term's mask, in one pass over the vector
  // (security/prg.h AddMasks). Errors as AddMasks.
  absl::Status AddMasks(std::span<const MaskTerm> masks);

  friend bool operator==(const ModularVector&, const ModularVector&) = default;

 private:
  int bits_ = 32;
  std::vector<uint32_t> words32_;
  std::vector<uint64_t> words64_;
};

}  // namespace samverka::security::secagg
