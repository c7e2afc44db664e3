// security/dp/accountant.h
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace samverka::security::dp {

// Rényi-DP accounting for the Poisson-subsampled Gaussian mechanism (the
// mechanism of DP-SGD and DP-FedAvg: each record / client is included with
// probability q, the clipped sum gets N(0, (sigma * C)^2) noise), following
// Mironov, Talwar and Zhang, "Rényi Differential Privacy of the Sampled
// Gaussian Mechanism" (2019, arXiv:1908.10530), section 3.3: the binomial
// expansion for integer orders and the two-sided series for fractional
// orders, both in log space, as TF Privacy's and Opacus' accountants do.
// Add/remove-one adjacency. Pure functions; the accountant class is
// thread-compatible.

// How RDP at order alpha turns into (epsilon, delta)-DP.
enum class Conversion {
  // Mironov 2017, Proposition 3: eps = rdp - log(delta) / (alpha - 1).
  // What TF Privacy reported until 2020 (e.g. its MNIST tutorial).
  kClassic,
  // Balle et al., "Hypothesis testing interpretations and Rényi
  // differential privacy" (AISTATS 2020), Theorem 21: eps = rdp +
  // log((alpha - 1) / alpha) - (log(delta) + log(alpha)) / (alpha - 1).
  // Always at most kClassic; Opacus' and dp_accounting's default.
  kBalle2020,
};

// The orders alpha over which the accountant optimises: Opacus' default
// list (1.1, 1.2, ..., 10.9 and 12 .. 63) plus 64, 80, 96, 128, 256, 512
// and 1024 for small sampling rates with much noise.
std::vector<double> DefaultOrders();

// kInvalidArgument naming the parameter unless q is in (0, 1], sigma > 0
// and finite, steps >= 1.
absl::Status ValidateSampledGaussian(double sampling_rate,
                                     double noise_multiplier, int64_t steps);
// kInvalidArgument unless 0 < delta < 1.
absl::Status ValidateDelta(double delta);

// RDP at `order` (> 1) of one step of the sampled Gaussian mechanism with
// sampling rate q and noise multiplier sigma. q = 1 gives alpha / (2
// sigma^2) exactly. May be +infinity (no useful bound at this order).
// kInvalidArgument for bad parameters or order <= 1.
absl::StatusOr<double> SampledGaussianRdp(double sampling_rate,
                                          double noise_multiplier,
                                          double order);

// An (epsilon, delta) guarantee and the order that gave it.
struct PrivacySpent {
  double epsilon = 0;
  double order = 0;
};

// The smallest epsilon over `orders` for `rdp` (total RDP per order,
// same length). kInvalidArgument for mismatched lengths, an order <= 1 or
// a bad delta. epsilon is +infinity when no order gives a finite bound.
absl::StatusOr<PrivacySpent> EpsilonFromRdp(
    std::span<const double> orders, std::span<const double> rdp, double delta,
    Conversion conversion = Conversion::kBalle2020);

// Composes sampled Gaussian steps (possibly with different q and sigma per
// step, e.g. one per federated round) and reports (epsilon, delta).
class RdpAccountant {
 public:
  explicit RdpAccountant(std::vector<double> orders = DefaultOrders());

  // Adds `steps` steps with rate q and multiplier sigma. kInvalidArgument
  // for bad parameters (the accountant is then unchanged).
  absl::Status Compose(double sampling_rate, double noise_multiplier,
                       int64_t steps = 1);

  // The guarantee after everything composed so far (epsilon 0 before the
  // first step). kInvalidArgument for a bad delta.
  absl::StatusOr<PrivacySpent> Spent(
      double delta, Conversion conversion = Conversion::kBalle2020) const;

  const std::vector<double>& orders() const { return orders_; }
  // Total RDP per order.
  const std::vector<double>& rdp() const { return rdp_; }
  // Steps composed so far.
  int64_t steps() const { return steps_; }

 private:
  std::vector<double> orders_;
  std::vector<double> rdp_;
  int64_t steps_ = 0;
};

// Epsilon after `steps` steps with rate q and multiplier sigma, over
// DefaultOrders(). kInvalidArgument naming any bad parameter.
absl::StatusOr<PrivacySpent> ComputeEpsilon(
    double sampling_rate, double noise_multiplier, int64_t steps, double delta,
    Conversion conversion = Conversion::kBalle2020);

// The smallest noise multiplier (to relative precision 1e-4, rounded up so
// the result always meets the target) whose epsilon after `steps` steps is
// at most `target_epsilon`. kInvalidArgument for bad parameters (target
// epsilon must be > 0 and finite); kOutOfRange if even sigma = 10^4 does not
// meet the target.
absl::StatusOr<double> SmallestNoiseMultiplier(
    double sampling_rate, int64_t steps, double delta, double target_epsilon,
    Conversion conversion = Conversion::kBalle2020);

}  // namespace samverka::security::dp
