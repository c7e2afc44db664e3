// security/dp/dp.h
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "security/dp/accountant.h"
#include "security/dp/noise.h"

namespace samverka::security::dp {

// DP-FedAvg for a coordinator (McMahan et al., ICLR 2018): the small API a
// round engine needs. Per round: hand clip_norm() to the cohort (clients
// clip their updates, common/task.h DpOptions), sum the clipped updates
// with weight 1 each, call AddCentralNoise on the sum (central mode), divide
// by expected_clients(), then FinishRound with the number of clients whose
// update was within the bound. epsilon() is the guarantee so far.

enum class DpMode {
  kOff,
  // The coordinator adds N(0, (z C)^2) per coordinate to the (secure) sum:
  // clients trust it to add the noise.
  kCentral,
  // Each of n clients adds discrete Gaussian noise of variance (z C)^2 / n
  // in the quantised domain before masking, so the sum carries the target
  // noise even under secure aggregation (Kairouz et al., ICML 2021).
  kDistributed,
};

// "off", "central" or "distributed"; kInvalidArgument naming the value.
absl::StatusOr<DpMode> ParseDpMode(std::string_view name);
std::string DpModeName(DpMode mode);

// Everything that configures DP-FedAvg. Field comments give the
// simulation's TOML key (docs/configuration.md).
struct DpConfig {
  DpMode mode = DpMode::kOff;       // dp
  double noise_multiplier = 1.0;    // dp_noise_multiplier: z = stddev / C
  double clip_norm = 1.0;           // dp_clip_norm: C (initial C if adaptive)
  bool adaptive_clip = false;       // dp_adaptive_clip
  double target_quantile = 0.5;     // dp_target_quantile: gamma
  double clip_learning_rate = 0.2;  // dp_clip_learning_rate: eta_C
  // sigma_b of the noised clipped-count; 0 picks Andrew et al.'s
  // expected_clients / 20.
  double count_noise_stddev = 0;  // dp_count_noise
  double delta = 1e-5;            // dp_delta

  // kInvalidArgument naming the option by its TOML key (e.g.
  // "dp_noise_multiplier = -1: ..."). With mode kOff nothing is checked.
  absl::Status Validate() const;
};

// The coordinator's DP state across rounds: clipping norm, noise and
// accountant. Not thread-safe.
class DpFedAvgServer {
 public:
  // `population`: clients that could be sampled; `expected_clients`: the
  // cohort size each round (q = expected_clients / population).
  // kInvalidArgument for a bad config, q outside (0, 1], or adaptive
  // clipping whose count noise would spend the whole budget.
  static absl::StatusOr<std::unique_ptr<DpFedAvgServer>> Create(
      const DpConfig& config, int64_t population, double expected_clients);

  // The clipping norm for this round's tasks.
  double clip_norm() const;
  // Divide the noised sum by this (uniform weights, fixed denominator).
  double expected_clients() const { return expected_clients_; }
  // The noise multiplier applied to the update sum (> noise_multiplier
  // with adaptive clipping, whose noised count takes a share of the budget).
  double update_noise_multiplier() const { return update_noise_multiplier_; }
  // The per-coordinate noise standard deviation for this round's sum.
  double noise_stddev() const { return update_noise_multiplier_ * clip_norm(); }

  // Central mode: adds N(0, noise_stddev()^2) to every coordinate of
  // `sum`. kInternal if the CSPRNG fails.
  absl::Status AddCentralNoise(std::span<double> sum);

  // Ends the round: composes one step into the accountant and, with
  // adaptive clipping, updates C from the (noised) count of clients whose
  // update was within the bound. kInvalidArgument for a negative count.
  absl::Status FinishRound(double within_clip_count);

  // (epsilon, delta) after the rounds finished so far (Balle et al. 2020
  // conversion); epsilon 0 before the first round.
  PrivacySpent spent() const;
  double delta() const { return config_.delta; }
  double sampling_rate() const { return sampling_rate_; }

 private:
  DpFedAvgServer() = default;
  DpConfig config_;
  double expected_clients_ = 0;
  double sampling_rate_ = 0;
  double update_noise_multiplier_ = 0;
  std::unique_ptr<AdaptiveClip> adaptive_;
  GaussianNoise noise_;
  RdpAccountant accountant_;
};

}  // namespace samverka::security::dp
