// security/secagg/modular_vector.cc
#include "security/secagg/modular_vector.h"

#include <cassert>
#include <string>

namespace samverka::security::secagg {
namespace {

// sum[i] += x[i]; the pointers never alias (Add of a vector to itself adds
// a copy), which lets the compiler vectorise without a runtime check.
template <typename Word>
void AddWords(Word* __restrict sum, const Word* __restrict x, size_t n) {
  for (size_t i = 0; i < n; ++i) sum[i] += x[i];
}

}  // namespace

ModularVector ModularVector::Zeros(int bits, size_t size) {
  assert(bits == 32 || bits == 64);
  ModularVector v;
  v.bits_ = bits;
  if (bits == 32) {
    v.words32_.assign(size, 0);
  } else {
    v.words64_.assign(size, 0);
  }
  return v;
}

ModularVector ModularVector::FromWords(std::vector<uint32_t> words) {
  ModularVector v;
  v.bits_ = 32;
  v.words32_ = std::move(words);
  return v;
}

ModularVector ModularVector::FromWords(std::vector<uint64_t> words) {
  ModularVector v;
  v.bits_ = 64;
  v.words64_ = std::move(words);
  return v;
}

void ModularVector::Set(size_t i, uint64_t value) {
  if (bits_ == 32) {
    words32_[i] = static_cast<uint32_t>(value);
  } else {
    words64_[i] = value;
  }
}

absl::Status ModularVector::Add(const ModularVector& other) {
  if (other.bits_ != bits_ || other.size() != size()) {
    return absl::InvalidArgumentError(
        "cannot add a vector over Z_2^" + std::to_string(other.bits_) +
        " of length " + std::to_string(other.size()) + " to one over Z_2^" +
        std::to_string(bits_) + " of length " + std::to_string(size()));
  }
  if (&other == this) {
    const ModularVector copy = other;
    return Add(copy);
  }
  // Unsigned arithmetic wraps: exactly mod 2^32 / 2^64.
  if (bits_ == 32) {
    AddWords(words32_.data(), other.words32_.data(), words32_.size());
  } else {
    AddWords(words64_.data(), other.words64_.data(), words64_.size());
  }
  return absl::OkStatus();
}

absl::Status ModularVector::AddMask(const SecretBytes& seed,
                                    std::string_view context, MaskSign sign) {
  if (bits_ == 32) {
    return security::AddMask(std::span<uint32_t>(words32_), seed, context,
                             sign);
  }
  return security::AddMask(std::span<uint64_t>(words64_), seed, context, sign);
}

absl::Status ModularVector::AddMasks(std::span<const MaskTerm> masks) {
  if (bits_ == 32) {
    return security::AddMasks(std::span<uint32_t>(words32_), masks);
  }
  return security::AddMasks(std::span<uint64_t>(words64_), masks);
}

}  // namespace samverka::security::secagg
