#include "security/dp/accountant.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "fmt/format.h"

namespace samverka::security::dp {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

absl::Status Bad(const std::string& message) {
  return absl::InvalidArgumentError(message);
}

// log(exp(a) + exp(b)).
double LogAdd(double a, double b) {
  const double lo = std::min(a, b);
  const double hi = std::max(a, b);
  if (lo == -kInf) return hi;
  return hi + std::log1p(std::exp(lo - hi));
}

// log(exp(a) - exp(b)) for a >= b; NaN when a < b (the series lost
// precision; the caller drops that order).
double LogSub(double a, double b) {
  if (a < b) return std::numeric_limits<double>::quiet_NaN();
  if (b == -kInf) return a;
  if (a == b) return -kInf;
  const double d = a - b;
  // expm1 overflows past ~709; then exp(a) - exp(b) == exp(a) to double
  // precision.
  if (d > 700) return a;
  return std::log(std::expm1(d)) + b;
}

// log(erfc(x)), accurate in the far tail where erfc underflows: there the
// asymptotic (Laurent) series erfc(x) ~ exp(-x^2) / (x sqrt(pi)) *
// (1 - 1/(2x^2) + 3/(4x^4) - ...) is used in log form, as in TF Privacy.
double LogErfc(double x) {
  if (x < 26) return std::log(std::erfc(x));
  const double x2 = x * x;
  return -0.5 * std::log(M_PI) - std::log(x) - x2 - 0.5 / x2 +
         0.625 / (x2 * x2) - 37.0 / 24.0 / (x2 * x2 * x2) +
         353.0 / 64.0 / (x2 * x2 * x2 * x2);
}

// log C(n, k) for integers.
double LogBinomial(int64_t n, int64_t k) {
  return std::lgamma(static_cast<double>(n) + 1) -
         std::lgamma(static_cast<double>(k) + 1) -
         std::lgamma(static_cast<double>(n - k) + 1);
}

// log A_alpha for integer alpha (Mironov et al. 2019, section 3.3):
// A_alpha = sum_i C(alpha, i) (1-q)^(alpha-i) q^i exp((i^2 - i) / (2 sigma^2)).
double LogAInteger(double q, double sigma, int64_t alpha) {
  double log_a = -kInf;
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  for (int64_t i = 0; i <= alpha; ++i) {
    const double di = static_cast<double>(i);
    const double term = LogBinomial(alpha, i) + di * log_q +
                        static_cast<double>(alpha - i) * log_1mq +
                        (di * di - di) / (2 * sigma * sigma);
    log_a = LogAdd(log_a, term);
  }
  return log_a;
}

// log A_alpha for fractional alpha (Mironov et al. 2019, section 3.3): the
// integral is split at z0 = sigma^2 log(1/q - 1) + 1/2 and each half is
// expanded in a binomial series with generalised coefficients C(alpha, i),
// whose sign alternates once i > alpha. Terms are added until both are
// below exp(-30), as in TF Privacy and Opacus. NaN if cancellation makes
// the series unusable.
double LogAFractional(double q, double sigma, double alpha) {
  double log_a0 = -kInf;
  double log_a1 = -kInf;
  const double z0 = sigma * sigma * std::log(1 / q - 1) + 0.5;
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  // |C(alpha, i)| and its sign, updated by C(alpha, i) = C(alpha, i-1) *
  // (alpha - i + 1) / i.
  double log_abs_coef = 0;
  bool positive = true;
  for (int64_t i = 0; i < 1000000; ++i) {
    const double di = static_cast<double>(i);
    if (i > 0) {
      const double factor = (alpha - di + 1) / di;
      log_abs_coef += std::log(std::fabs(factor));
      if (factor < 0) positive = !positive;
    }
    const double j = alpha - di;
    const double log_t0 = log_abs_coef + di * log_q + j * log_1mq;
    const double log_t1 = log_abs_coef + j * log_q + di * log_1mq;
    const double log_e0 =
        std::log(0.5) + LogErfc((di - z0) / (M_SQRT2 * sigma));
    const double log_e1 = std::log(0.5) + LogErfc((z0 - j) / (M_SQRT2 * sigma));
    const double log_s0 =
        log_t0 + (di * di - di) / (2 * sigma * sigma) + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / (2 * sigma * sigma) + log_e1;
    if (positive) {
      log_a0 = LogAdd(log_a0, log_s0);
      log_a1 = LogAdd(log_a1, log_s1);
    } else {
      log_a0 = LogSub(log_a0, log_s0);
      log_a1 = LogSub(log_a1, log_s1);
    }
    if (std::isnan(log_a0) || std::isnan(log_a1))
      return std::numeric_limits<double>::quiet_NaN();
    if (std::max(log_s0, log_s1) < -30) break;
  }
  return LogAdd(log_a0, log_a1);
}

double RdpOneStep(double q, double sigma, double order) {
  if (q == 1.0) return order / (2 * sigma * sigma);
  if (std::isinf(order)) return kInf;
  double log_a;
  if (order == std::floor(order) && order < 1e6) {
    log_a = LogAInteger(q, sigma, static_cast<int64_t>(order));
  } else {
    log_a = LogAFractional(q, sigma, order);
  }
  if (std::isnan(log_a)) return kInf;  // no usable bound at this order
  return std::max(0.0, log_a / (order - 1));
}

}  // namespace

std::vector<double> DefaultOrders() {
  std::vector<double> orders;
  for (int x = 1; x < 100; ++x) orders.push_back(1 + x / 10.0);
  for (int a = 12; a < 64; ++a) orders.push_back(a);
  for (double a : {64.0, 80.0, 96.0, 128.0, 256.0, 512.0, 1024.0})
    orders.push_back(a);
  return orders;
}

absl::Status ValidateSampledGaussian(double sampling_rate,
                                     double noise_multiplier, int64_t steps) {
  if (!(sampling_rate > 0 && sampling_rate <= 1)) {
    return Bad(
        fmt::format("sampling rate q = {}: must be in (0, 1]", sampling_rate));
  }
  if (!(noise_multiplier > 0) || !std::isfinite(noise_multiplier)) {
    return Bad(
        fmt::format("noise multiplier sigma = {}: must be a positive number",
                    noise_multiplier));
  }
  if (steps < 1)
    return Bad(fmt::format("rounds (steps) = {}: must be >= 1", steps));
  return absl::OkStatus();
}

absl::Status ValidateDelta(double delta) {
  if (!(delta > 0 && delta < 1)) {
    return Bad(fmt::format("delta = {}: must be in (0, 1), typically below 1/N",
                           delta));
  }
  return absl::OkStatus();
}

absl::StatusOr<double> SampledGaussianRdp(double sampling_rate,
                                          double noise_multiplier,
                                          double order) {
  if (absl::Status s =
          ValidateSampledGaussian(sampling_rate, noise_multiplier, 1);
      !s.ok()) {
    return s;
  }
  if (!(order > 1)) return Bad(fmt::format("RDP order {}: must be > 1", order));
  return RdpOneStep(sampling_rate, noise_multiplier, order);
}

absl::StatusOr<PrivacySpent> EpsilonFromRdp(std::span<const double> orders,
                                            std::span<const double> rdp,
                                            double delta,
                                            Conversion conversion) {
  if (absl::Status s = ValidateDelta(delta); !s.ok()) return s;
  if (orders.size() != rdp.size() || orders.empty()) {
    return Bad(fmt::format("{} RDP orders but {} RDP values", orders.size(),
                           rdp.size()));
  }
  PrivacySpent best{kInf, orders[0]};
  const double log_delta = std::log(delta);
  for (size_t k = 0; k < orders.size(); ++k) {
    const double a = orders[k];
    if (!(a > 1)) return Bad(fmt::format("RDP order {}: must be > 1", a));
    if (std::isnan(rdp[k]) || rdp[k] < 0) {
      return Bad(
          fmt::format("RDP value {} at order {}: must be >= 0", rdp[k], a));
    }
    double eps;
    if (conversion == Conversion::kClassic) {
      eps = rdp[k] - log_delta / (a - 1);
    } else {
      eps = rdp[k] + std::log1p(-1 / a) - (log_delta + std::log(a)) / (a - 1);
    }
    eps = std::max(0.0, eps);
    if (eps < best.epsilon) best = {eps, a};
  }
  return best;
}

RdpAccountant::RdpAccountant(std::vector<double> orders)
    : orders_(std::move(orders)), rdp_(orders_.size(), 0.0) {}

absl::Status RdpAccountant::Compose(double sampling_rate,
                                    double noise_multiplier, int64_t steps) {
  if (absl::Status s =
          ValidateSampledGaussian(sampling_rate, noise_multiplier, steps);
      !s.ok()) {
    return s;
  }
  for (double a : orders_) {
    if (!(a > 1)) return Bad(fmt::format("RDP order {}: must be > 1", a));
  }
  for (size_t k = 0; k < orders_.size(); ++k) {
    rdp_[k] += static_cast<double>(steps) *
               RdpOneStep(sampling_rate, noise_multiplier, orders_[k]);
  }
  steps_ += steps;
  return absl::OkStatus();
}

absl::StatusOr<PrivacySpent> RdpAccountant::Spent(double delta,
                                                  Conversion conversion) const {
  if (steps_ == 0) {
    // Nothing released yet; the conversion formulas would give a small
    // positive number for zero RDP.
    if (absl::Status s = ValidateDelta(delta); !s.ok()) return s;
    return PrivacySpent{0, orders_.empty() ? 0 : orders_[0]};
  }
  return EpsilonFromRdp(orders_, rdp_, delta, conversion);
}

absl::StatusOr<PrivacySpent> ComputeEpsilon(double sampling_rate,
                                            double noise_multiplier,
                                            int64_t steps, double delta,
                                            Conversion conversion) {
  if (absl::Status s = ValidateDelta(delta); !s.ok()) return s;
  RdpAccountant accountant;
  if (absl::Status s =
          accountant.Compose(sampling_rate, noise_multiplier, steps);
      !s.ok()) {
    return s;
  }
  return accountant.Spent(delta, conversion);
}

absl::StatusOr<double> SmallestNoiseMultiplier(double sampling_rate,
                                               int64_t steps, double delta,
                                               double target_epsilon,
                                               Conversion conversion) {
  if (!(target_epsilon > 0) || !std::isfinite(target_epsilon)) {
    return Bad(fmt::format("target epsilon = {}: must be a positive number",
                           target_epsilon));
  }
  if (absl::Status s = ValidateDelta(delta); !s.ok()) return s;
  if (absl::Status s = ValidateSampledGaussian(sampling_rate, 1.0, steps);
      !s.ok())
    return s;
  auto epsilon = [&](double sigma) {
    return ComputeEpsilon(sampling_rate, sigma, steps, delta, conversion)
        ->epsilon;
  };
  // Bracket: epsilon falls as sigma grows. hi always meets the target.
  double lo = 0;
  double hi = 1;
  while (epsilon(hi) > target_epsilon) {
    lo = hi;
    hi *= 2;
    if (hi > 1e4) {
      return absl::OutOfRangeError(
          fmt::format("target epsilon {} is out of reach: even noise "
                      "multiplier 10^4 gives more "
                      "(q = {}, {} rounds, delta = {})",
                      target_epsilon, sampling_rate, steps, delta));
    }
  }
  while (hi - lo > 1e-4 * hi) {
    const double mid = (lo + hi) / 2;
    if (epsilon(mid) > target_epsilon) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return hi;
}

}  // namespace samverka::security::dp
