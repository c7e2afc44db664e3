// security/secagg/modular_vector.cc
#include "security/secagg/modular_vector.h"

#include <cassert>
#include <string>

namespace samverka::security::secagg {

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
  // Unsigned arithmetic wraps: exactly mod 2^32 / 2^64.
  if (bits_ == 32) {
    for (size_t i = 0; i < words32_.size(); ++i)
      words32_[i] += other.words32_[i];
  } else {
    for (size_t i = 0; i < words64_.size(); ++i)
      words64_[i] += other.words64_[i];
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

}  // namespace samverka::security::secagg
