// security/dp/noise.h
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "security/dp/internal/csprng.h"

namespace samverka::security::dp {

// The primitives of DP-FedAvg (McMahan et al., "Learning Differentially
// Private Recurrent Language Models", ICLR 2018): L2 clipping of a client's
// update, adaptive clipping (Andrew et al., "Differentially Private Learning
// with Adaptive Clipping", NeurIPS 2021), continuous Gaussian noise for the
// coordinator and exact discrete Gaussian noise for distributed DP. All
// randomness comes from OpenSSL's RAND_bytes.

// What clipping did: the L2 norm before clipping and whether it exceeded the
// bound (then the values were scaled by clip_norm / norm).
struct ClipResult {
  double norm = 0;
  bool clipped = false;
};

// Scales `values` in place so their L2 norm is at most `clip_norm`.
// kInvalidArgument if clip_norm is not a positive number or a value is NaN
// or infinite (`values` is then unchanged).
absl::StatusOr<ClipResult> ClipL2(std::span<float> values, double clip_norm);

// Continuous Gaussian noise for the central mode. Method: Box-Muller on two
// uniforms with 53 random bits each from RAND_bytes. Floating-point caveats:
// the tails are cut at sqrt(-2 ln 2^-53) ~= 8.6 standard deviations, and
// doubles are not uniformly spaced, so this is not an exact implementation
// of the Gaussian mechanism (Mironov, CCS 2012, shows such attacks on
// textbook Laplace noise); the distributed mode's discrete sampler is exact.
// Not thread-safe; use one instance per thread.
class GaussianNoise {
 public:
  // Adds N(0, stddev^2) to every element. kInvalidArgument for a negative
  // or non-finite stddev; kInternal if RAND_bytes fails (values are then
  // partly noised and must be discarded).
  absl::Status Add(std::span<double> values, double stddev);
  // One draw of N(0, stddev^2); errors as Add.
  absl::StatusOr<double> Sample(double stddev);

 private:
  double Standard();
  internal::Csprng random_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// Exact sampler of the discrete Gaussian N_Z(0, sigma^2), P(x) ∝
// exp(-x^2 / (2 sigma^2)) on the integers (Canonne, Kamath and Steinke, "The
// Discrete Gaussian for Differential Privacy", NeurIPS 2020, Algorithms 1-3:
// Bernoulli(exp(-gamma)) by a series, discrete Laplace, then rejection),
// with integer (128-bit) arithmetic only. sigma^2 is represented as the
// rational n / d, rounded up (d = 1 for sigma^2 >= 2^16, else 2^16), so
// the noise is never smaller than asked. Not thread-safe.
class DiscreteGaussian {
 public:
  // kInvalidArgument unless 0 < sigma <= 2^26 (the arithmetic then fits in
  // 128 bits: |draws| are capped at 2^8 (floor(sigma) + 1), which changes
  // the distribution by less than exp(-256)).
  static absl::StatusOr<DiscreteGaussian> Create(double sigma);

  // One draw; kInternal if RAND_bytes fails.
  absl::StatusOr<int64_t> Sample();
  // Fills `out` with independent draws.
  absl::Status Sample(std::span<int64_t> out);
  // The sigma^2 actually sampled, n / d.
  double variance() const {
    return static_cast<double>(n_) / static_cast<double>(d_);
  }

 private:
  DiscreteGaussian(uint64_t n, uint64_t d, uint64_t t) : n_(n), d_(d), t_(t) {}
  bool BernoulliExp(unsigned __int128 numerator, unsigned __int128 denominator);
  bool BernoulliExpAtMostOne(unsigned __int128 numerator,
                             unsigned __int128 denominator);
  int64_t DiscreteLaplace();
  int64_t Draw();

  uint64_t n_;
  uint64_t d_;
  uint64_t t_;  // floor(sigma) + 1
  internal::Csprng random_;
};

// Adaptive clipping (Andrew et al. 2021, Algorithm 1 with geometric
// update): after each round C <- C * exp(-eta * (b - gamma)), where b is
// the noised fraction of the round's clients whose update norm was <= C:
// b = (count + N(0, count_noise_stddev^2)) / expected_clients.
struct AdaptiveClipOptions {
  double initial_clip = 0.1;     // C at round 0, > 0
  double target_quantile = 0.5;  // gamma in [0, 1]
  double learning_rate = 0.2;    // eta > 0 (the paper's default)
  // sigma_b: noise on the count (the paper suggests expected_clients / 20).
  double count_noise_stddev = 0;

  // kInvalidArgument naming the field.
  absl::Status Validate() const;
};

// Thread-compatible.
class AdaptiveClip {
 public:
  // kInvalidArgument for bad options.
  static absl::StatusOr<AdaptiveClip> Create(
      const AdaptiveClipOptions& options);
  // The clipping norm for the next round.
  double clip() const { return clip_; }
  // One round: `unclipped_count` of the round's clients had a norm <=
  // clip(); `expected_clients` > 0. kInvalidArgument for a negative count
  // or a non-positive expected size; kInternal if the noise fails.
  absl::Status Update(double unclipped_count, double expected_clients,
                      GaussianNoise& noise);

 private:
  explicit AdaptiveClip(const AdaptiveClipOptions& options)
      : options_(options), clip_(options.initial_clip) {}
  AdaptiveClipOptions options_;
  double clip_;
};

// The noise multiplier left for the update when the clipped count is noised
// with count_noise_stddev (Andrew et al. 2021, section 3.1): the pair is a
// Gaussian mechanism with multiplier z where z^-2 = z_update^-2 +
// (2 sigma_b)^-2, so z_update = (z^-2 - (2 sigma_b)^-2)^-1/2. With
// count_noise_stddev 0 (no adaptive clipping) returns z.
// kInvalidArgument if 2 sigma_b <= z (the count alone would spend the budget).
absl::StatusOr<double> UpdateNoiseMultiplier(double noise_multiplier,
                                             double count_noise_stddev);

}  // namespace samverka::security::dp
