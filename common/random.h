// common/random.h
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace samverka {

// A uniform integer in [0, bound), bound > 0, by rejection sampling on the
// raw 64-bit output. std::mt19937_64's output sequence is fixed by the C++
// standard, so unlike std::uniform_int_distribution the result is identical
// across standard libraries.
inline uint64_t UniformBelow(std::mt19937_64& rng, uint64_t bound) {
  // Reject the lowest (2^64 mod bound) values so every residue is equally
  // likely.
  const uint64_t threshold = (0 - bound) % bound;
  while (true) {
    const uint64_t x = rng();
    if (x >= threshold) return x % bound;
  }
}

// Fisher–Yates shuffle with UniformBelow; portable, unlike std::shuffle.
template <typename T>
void Shuffle(std::vector<T>& values, std::mt19937_64& rng) {
  for (size_t i = values.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(UniformBelow(rng, i));
    std::swap(values[i - 1], values[j]);
  }
}

}  // namespace samverka
