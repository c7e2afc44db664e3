#include "security/dp/dp.h"

#include <cmath>

#include "fmt/format.h"

namespace samverka::security::dp {

absl::StatusOr<DpMode> ParseDpMode(std::string_view name) {
  if (name == "off") return DpMode::kOff;
  if (name == "central") return DpMode::kCentral;
  if (name == "distributed") return DpMode::kDistributed;
  return absl::InvalidArgumentError(fmt::format(
      "dp = \"{}\": must be \"off\", \"central\" or \"distributed\"", name));
}

std::string DpModeName(DpMode mode) {
  switch (mode) {
    case DpMode::kOff:
      return "off";
    case DpMode::kCentral:
      return "central";
    case DpMode::kDistributed:
      return "distributed";
  }
  return "off";
}

absl::Status DpConfig::Validate() const {
  if (mode == DpMode::kOff) return absl::OkStatus();
  auto bad = [](std::string_view key, double value, std::string_view rule) {
    return absl::InvalidArgumentError(
        fmt::format("{} = {}: {}", key, value, rule));
  };
  if (!(noise_multiplier > 0) || !std::isfinite(noise_multiplier)) {
    return bad("dp_noise_multiplier", noise_multiplier,
               "must be a positive number");
  }
  if (!(clip_norm > 0) || !std::isfinite(clip_norm)) {
    return bad("dp_clip_norm", clip_norm, "must be a positive number");
  }
  if (!(delta > 0 && delta < 1))
    return bad("dp_delta", delta, "must be in (0, 1)");
  if (!(target_quantile >= 0 && target_quantile <= 1)) {
    return bad("dp_target_quantile", target_quantile, "must be in [0, 1]");
  }
  if (!(clip_learning_rate > 0) || !std::isfinite(clip_learning_rate)) {
    return bad("dp_clip_learning_rate", clip_learning_rate,
               "must be a positive number");
  }
  if (!(count_noise_stddev >= 0) || !std::isfinite(count_noise_stddev)) {
    return bad("dp_count_noise", count_noise_stddev, "must be >= 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DpFedAvgServer>> DpFedAvgServer::Create(
    const DpConfig& config, int64_t population, double expected_clients) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  if (config.mode == DpMode::kOff) {
    return absl::InvalidArgumentError(
        "DpFedAvgServer needs dp = central or distributed");
  }
  if (!(population >= 1) || !(expected_clients > 0) ||
      !(expected_clients <= static_cast<double>(population))) {
    return absl::InvalidArgumentError(
        fmt::format("DP sampling rate: {} expected clients of {} must give a "
                    "rate in (0, 1]",
                    expected_clients, population));
  }
  auto server = std::unique_ptr<DpFedAvgServer>(new DpFedAvgServer());
  server->config_ = config;
  server->expected_clients_ = expected_clients;
  server->sampling_rate_ = expected_clients / static_cast<double>(population);
  server->update_noise_multiplier_ = config.noise_multiplier;
  if (config.adaptive_clip) {
    AdaptiveClipOptions options;
    options.initial_clip = config.clip_norm;
    options.target_quantile = config.target_quantile;
    options.learning_rate = config.clip_learning_rate;
    options.count_noise_stddev = config.count_noise_stddev > 0
                                     ? config.count_noise_stddev
                                     : expected_clients / 20;
    absl::StatusOr<double> z = UpdateNoiseMultiplier(
        config.noise_multiplier, options.count_noise_stddev);
    if (!z.ok()) {
      return absl::InvalidArgumentError(fmt::format(
          "dp_adaptive_clip: {}; raise dp_count_noise or the cohort size",
          std::string(z.status().message())));
    }
    server->update_noise_multiplier_ = *z;
    absl::StatusOr<AdaptiveClip> adaptive = AdaptiveClip::Create(options);
    if (!adaptive.ok()) return adaptive.status();
    server->adaptive_ = std::make_unique<AdaptiveClip>(*adaptive);
  }
  return server;
}

double DpFedAvgServer::clip_norm() const {
  return adaptive_ != nullptr ? adaptive_->clip() : config_.clip_norm;
}

absl::Status DpFedAvgServer::AddCentralNoise(std::span<double> sum) {
  return noise_.Add(sum, noise_stddev());
}

absl::Status DpFedAvgServer::FinishRound(double within_clip_count) {
  if (!(within_clip_count >= 0)) {
    return absl::InvalidArgumentError(
        fmt::format("within-clip count {} must be >= 0", within_clip_count));
  }
  if (absl::Status s =
          accountant_.Compose(sampling_rate_, config_.noise_multiplier, 1);
      !s.ok()) {
    return s;
  }
  if (adaptive_ != nullptr)
    return adaptive_->Update(within_clip_count, expected_clients_, noise_);
  return absl::OkStatus();
}

PrivacySpent DpFedAvgServer::spent() const {
  absl::StatusOr<PrivacySpent> spent = accountant_.Spent(config_.delta);
  return spent.ok() ? *spent : PrivacySpent{};
}

}  // namespace samverka::security::dp
