#include "security/dp/noise.h"

#include <cmath>

#include "fmt/format.h"

namespace samverka::security::dp {
namespace {

using u128 = unsigned __int128;

// Integer square root (floor) of a 64-bit value.
uint64_t IntegerSqrt(uint64_t x) {
  uint64_t r = static_cast<uint64_t>(std::sqrt(static_cast<double>(x)));
  while (r > 0 && static_cast<u128>(r) * r > x) --r;
  while (static_cast<u128>(r + 1) * (r + 1) <= x) ++r;
  return r;
}

}  // namespace

absl::StatusOr<ClipResult> ClipL2(std::span<float> values, double clip_norm) {
  if (!(clip_norm > 0) || !std::isfinite(clip_norm)) {
    return absl::InvalidArgumentError(
        fmt::format("clipping norm {}: must be a positive number", clip_norm));
  }
  double sum = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(fmt::format(
          "cannot clip: value {} at index {} is not finite", values[i], i));
    }
    sum += static_cast<double>(values[i]) * values[i];
  }
  ClipResult result{std::sqrt(sum), false};
  if (result.norm > clip_norm) {
    result.clipped = true;
    const double scale = clip_norm / result.norm;
    for (float& v : values) v = static_cast<float>(v * scale);
  }
  return result;
}

double GaussianNoise::Standard() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  // Box-Muller: u1 in (0, 1] keeps the log finite; u2 in (0, 1].
  const double radius = std::sqrt(-2 * std::log(random_.OpenUnit()));
  const double angle = 2 * M_PI * random_.OpenUnit();
  spare_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

absl::Status GaussianNoise::Add(std::span<double> values, double stddev) {
  if (!(stddev >= 0) || !std::isfinite(stddev)) {
    return absl::InvalidArgumentError(fmt::format(
        "noise standard deviation {}: must be a non-negative number", stddev));
  }
  for (double& v : values) v += stddev * Standard();
  return random_.status();
}

absl::StatusOr<double> GaussianNoise::Sample(double stddev) {
  double value = 0;
  if (absl::Status s = Add(std::span<double>(&value, 1), stddev); !s.ok())
    return s;
  return value;
}

absl::StatusOr<DiscreteGaussian> DiscreteGaussian::Create(double sigma) {
  const double variance = sigma * sigma;
  if (!(sigma > 0) || !(variance <= 0x1.0p52)) {
    return absl::InvalidArgumentError(
        fmt::format("discrete Gaussian sigma {}: must be in (0, 2^26]", sigma));
  }
  const uint64_t d = variance >= 0x1.0p16 ? 1 : (uint64_t{1} << 16);
  const uint64_t n =
      static_cast<uint64_t>(std::ceil(variance * static_cast<double>(d)));
  const uint64_t t = IntegerSqrt(n / d) + 1;  // floor(sqrt(n/d)) + 1
  return DiscreteGaussian(n, d, t);
}

// Bernoulli(exp(-gamma)) for gamma = numerator / denominator in [0, 1]
// (Canonne et al. 2020, Algorithm 1): K = 1; while Bernoulli(gamma / K)
// succeeds, K += 1; return whether K is odd.
bool DiscreteGaussian::BernoulliExpAtMostOne(u128 numerator, u128 denominator) {
  for (u128 k = 1;; ++k) {
    // Bernoulli(numerator / (denominator * k)); the product cannot overflow
    // for the sizes Create admits (denominator < 2^106, k tiny).
    if (random_.Below128(denominator * k) >= numerator) return (k & 1) == 1;
  }
}

// Bernoulli(exp(-gamma)) for any gamma >= 0: floor(gamma) draws of
// Bernoulli(exp(-1)), then one of Bernoulli(exp(-(gamma - floor gamma))).
bool DiscreteGaussian::BernoulliExp(u128 numerator, u128 denominator) {
  u128 whole = numerator / denominator;
  for (; whole > 0; --whole) {
    if (!BernoulliExpAtMostOne(1, 1)) return false;
  }
  return BernoulliExpAtMostOne(numerator % denominator, denominator);
}

// The discrete Laplace distribution with scale t, P(x) ∝ exp(-|x| / t)
// (Canonne et al. 2020, Algorithm 2).
int64_t DiscreteGaussian::DiscreteLaplace() {
  while (true) {
    const uint64_t u = random_.Below(t_);
    if (!BernoulliExp(u, t_)) continue;
    uint64_t v = 0;
    while (BernoulliExpAtMostOne(1, 1)) ++v;
    const u128 x = static_cast<u128>(u) + static_cast<u128>(t_) * v;
    const bool negative = (random_.Next64() & 1) == 1;
    if (negative && x == 0) continue;
    // |x| beyond 2^8 t has probability below exp(-256) (1e-111); redrawing
    // keeps the arithmetic below in 128 bits at no measurable cost in
    // exactness.
    if (x > (static_cast<u128>(t_) << 8)) continue;
    return negative ? -static_cast<int64_t>(x) : static_cast<int64_t>(x);
  }
}

// Canonne et al. 2020, Algorithm 3: Y ~ DLap(t) accepted with probability
// exp(-(|Y| - sigma^2 / t)^2 / (2 sigma^2)). With sigma^2 = n / d the
// exponent is (|Y| d t - n)^2 / (2 n d t^2).
int64_t DiscreteGaussian::Draw() {
  while (true) {
    const int64_t y = DiscreteLaplace();
    if (!random_.status().ok()) return 0;
    const u128 magnitude = static_cast<u128>(y < 0 ? -y : y);
    const u128 scaled = magnitude * d_ * t_;
    const u128 difference = scaled > n_ ? scaled - n_ : n_ - scaled;
    const u128 numerator = difference * difference;
    const u128 denominator = static_cast<u128>(2) * n_ * d_ * t_ * t_;
    if (BernoulliExp(numerator, denominator)) return y;
  }
}

absl::StatusOr<int64_t> DiscreteGaussian::Sample() {
  const int64_t value = Draw();
  if (!random_.status().ok()) return random_.status();
  return value;
}

absl::Status DiscreteGaussian::Sample(std::span<int64_t> out) {
  for (int64_t& v : out) v = Draw();
  return random_.status();
}

absl::Status AdaptiveClipOptions::Validate() const {
  auto bad = [](const std::string& what) {
    return absl::InvalidArgumentError(what);
  };
  if (!(initial_clip > 0) || !std::isfinite(initial_clip)) {
    return bad(fmt::format(
        "adaptive clipping: initial clip {} must be a positive number",
        initial_clip));
  }
  if (!(target_quantile >= 0 && target_quantile <= 1)) {
    return bad(
        fmt::format("adaptive clipping: target quantile {} must be in [0, 1]",
                    target_quantile));
  }
  if (!(learning_rate > 0) || !std::isfinite(learning_rate)) {
    return bad(fmt::format(
        "adaptive clipping: learning rate {} must be a positive number",
        learning_rate));
  }
  if (!(count_noise_stddev >= 0) || !std::isfinite(count_noise_stddev)) {
    return bad(fmt::format("adaptive clipping: count noise {} must be >= 0",
                           count_noise_stddev));
  }
  return absl::OkStatus();
}

absl::StatusOr<AdaptiveClip> AdaptiveClip::Create(
    const AdaptiveClipOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  return AdaptiveClip(options);
}

absl::Status AdaptiveClip::Update(double unclipped_count,
                                  double expected_clients,
                                  GaussianNoise& noise) {
  if (!(unclipped_count >= 0) || !(expected_clients > 0)) {
    return absl::InvalidArgumentError(
        fmt::format("adaptive clipping: count {} of {} expected clients",
                    unclipped_count, expected_clients));
  }
  absl::StatusOr<double> count_noise =
      noise.Sample(options_.count_noise_stddev);
  if (!count_noise.ok()) return count_noise.status();
  const double fraction = (unclipped_count + *count_noise) / expected_clients;
  clip_ *=
      std::exp(-options_.learning_rate * (fraction - options_.target_quantile));
  return absl::OkStatus();
}

absl::StatusOr<double> UpdateNoiseMultiplier(double noise_multiplier,
                                             double count_noise_stddev) {
  if (!(noise_multiplier > 0) || !std::isfinite(noise_multiplier)) {
    return absl::InvalidArgumentError(fmt::format(
        "noise multiplier {}: must be a positive number", noise_multiplier));
  }
  if (count_noise_stddev == 0) return noise_multiplier;
  const double inverse =
      std::pow(noise_multiplier, -2) - std::pow(2 * count_noise_stddev, -2);
  if (!(inverse > 0)) {
    return absl::InvalidArgumentError(
        fmt::format("adaptive clipping: count noise {} is too small for noise "
                    "multiplier {} "
                    "(needs 2 * count noise > noise multiplier)",
                    count_noise_stddev, noise_multiplier));
  }
  return 1 / std::sqrt(inverse);
}

}  // namespace samverka::security::dp
