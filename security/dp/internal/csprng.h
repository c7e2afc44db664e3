// security/dp/internal/csprng.h
#pragma once

#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <cstring>

#include "absl/status/status.h"

namespace samverka::security::dp::internal {

// Uniform 64-bit words from OpenSSL's CSPRNG (RAND_bytes), fetched 4 KiB at
// a time. A failed refill latches: every later word is 0 and status()
// reports kInternal, so samplers check status() once after drawing.
// Not thread-safe; movable and copyable (a copy reuses no bytes: it refills).
class Csprng {
 public:
  uint64_t Next64() {
    if (position_ == buffer_.size()) Refill();
    return buffer_[position_++];
  }
  // A uniform integer in [0, bound) for bound > 0, by rejection.
  uint64_t Below(uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;
    while (true) {
      const uint64_t x = Next64();
      if (x >= threshold || !status_.ok()) return x % bound;
    }
  }
  // A uniform 128-bit integer in [0, bound) for bound > 0, by rejection.
  unsigned __int128 Below128(unsigned __int128 bound) {
    if (bound >> 64 == 0) return Below(static_cast<uint64_t>(bound));
    const unsigned __int128 threshold = (0 - bound) % bound;
    while (true) {
      const unsigned __int128 x =
          (static_cast<unsigned __int128>(Next64()) << 64) | Next64();
      if (x >= threshold || !status_.ok()) return x % bound;
    }
  }
  // A double uniform in (0, 1]: 53 random bits, never 0.
  double OpenUnit() {
    return static_cast<double>((Next64() >> 11) + 1) * 0x1.0p-53;
  }
  absl::Status status() const { return status_; }

  Csprng() = default;
  Csprng(const Csprng& other) : status_(other.status_) {}
  Csprng& operator=(const Csprng& other) {
    status_ = other.status_;
    position_ = buffer_.size();
    return *this;
  }

 private:
  void Refill() {
    position_ = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(buffer_.data()),
                   static_cast<int>(buffer_.size() * sizeof(uint64_t))) != 1) {
      status_ = absl::InternalError(
          "OpenSSL RAND_bytes failed while drawing DP noise");
      buffer_.fill(0);
    }
  }

  std::array<uint64_t, 512> buffer_{};
  size_t position_ = buffer_.size();
  absl::Status status_;
};

}  // namespace samverka::security::dp::internal
