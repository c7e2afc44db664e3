#include "coordinator/strategy.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "coordinator/internal/strategies.h"

namespace samverka::coordinator {
namespace {

bool IsAdaptive(const std::string& name) {
  return name == "fedadam" || name == "fedyogi" || name == "fedadagrad";
}

absl::Status Bad(const std::string& parameter, double value, const std::string& rule,
                 const std::string& strategy) {
  return absl::InvalidArgumentError(
      absl::StrCat("strategy ", strategy, ": ", parameter, " = ", value, " ", rule));
}

bool InUnitInterval(double v) { return v >= 0 && v < 1; }

}  // namespace

absl::StatusOr<std::vector<float>> Strategy::Finish(std::span<const float> global) {
  std::vector<float> next(global.begin(), global.end());
  SV_RETURN_IF_ERROR(FinishInPlace(next));
  return next;
}

std::vector<std::string> StrategyNames() {
  return {"fedavg",     "fedavgm", "fedprox",      "fedadam", "fedyogi",
          "fedadagrad", "median",  "trimmed-mean", "krum"};
}

double StrategyOptions::effective_server_learning_rate() const {
  if (server_learning_rate.has_value()) return *server_learning_rate;
  return IsAdaptive(name) ? 0.01 : 1.0;
}

bool StrategyOptions::needs_individual_updates() const {
  return name == "median" || name == "trimmed-mean" || name == "krum";
}

absl::Status StrategyOptions::Validate() const {
  const std::vector<std::string> names = StrategyNames();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown strategy '", name,
                                                   "'; known strategies are ",
                                                   absl::StrJoin(names, ", ")));
  }
  const double lr = effective_server_learning_rate();
  if (!(lr > 0) || !std::isfinite(lr)) {
    return Bad("server_learning_rate", lr, "must be a positive number", name);
  }
  if (name == "fedavgm" && !InUnitInterval(server_momentum)) {
    return Bad("server_momentum", server_momentum, "must be in [0, 1)", name);
  }
  if (IsAdaptive(name)) {
    if (!InUnitInterval(beta1)) return Bad("beta1", beta1, "must be in [0, 1)", name);
    if (name != "fedadagrad" && !InUnitInterval(beta2)) {
      return Bad("beta2", beta2, "must be in [0, 1)", name);
    }
    if (!(tau > 0) || !std::isfinite(tau)) {
      return Bad("tau", tau, "must be a positive number (Reddi et al. use 1e-3)", name);
    }
  }
  if (name == "trimmed-mean" && !(trim_fraction >= 0 && trim_fraction < 0.5)) {
    return Bad("trim_fraction", trim_fraction,
               "must be in [0, 0.5): it is the share trimmed at each end", name);
  }
  if (name == "krum") {
    if (krum_byzantine < 0) return Bad("krum_byzantine", krum_byzantine, "must be >= 0", name);
    if (krum_selected < 0) {
      return Bad("krum_selected", krum_selected, "must be >= 0 (0: n - krum_byzantine)", name);
    }
  }
  return absl::OkStatus();
}

absl::Status StrategyOptions::ValidateFor(int min_updates, bool secure_aggregation,
                                          double proximal_mu) const {
  SV_RETURN_IF_ERROR(Validate());
  if (secure_aggregation && needs_individual_updates()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "strategy ", name, " needs each client's update, but secure aggregation reveals only "
        "their sum: turn secure_aggregation off, or choose one of fedavg, fedavgm, fedprox, "
        "fedadam, fedyogi, fedadagrad"));
  }
  if (name == "fedprox" && !(proximal_mu > 0)) {
    return absl::InvalidArgumentError(
        "strategy fedprox needs proximal_mu > 0 (the clients' proximal term mu/2 * "
        "||w - w_global||^2; Li et al. 2020 try 0.001 to 1)");
  }
  if (name == "krum") {
    const int f = krum_byzantine;
    if (min_updates <= 2 * f + 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "strategy krum with krum_byzantine = ", f, " needs more than 2f + 2 = ", 2 * f + 2,
          " updates per round, but a round may have only ", min_updates,
          "; raise the cohort size (min_clients / clients_per_round) or lower krum_byzantine"));
    }
    if (krum_selected > min_updates - f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "strategy krum: krum_selected = ", krum_selected, " is more than n - krum_byzantine = ",
          min_updates - f, " for a round of ", min_updates, " updates"));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyStrategyConfig(ConfigFile& file, StrategyOptions* o) {
  SV_RETURN_IF_ERROR(file.Get("strategy", &o->name));
  if (file.Has("server_learning_rate")) {
    double lr = 0;
    SV_RETURN_IF_ERROR(file.Get("server_learning_rate", &lr));
    o->server_learning_rate = lr;
  }
  SV_RETURN_IF_ERROR(file.Get("server_momentum", &o->server_momentum));
  SV_RETURN_IF_ERROR(file.Get("beta1", &o->beta1));
  SV_RETURN_IF_ERROR(file.Get("beta2", &o->beta2));
  SV_RETURN_IF_ERROR(file.Get("tau", &o->tau));
  SV_RETURN_IF_ERROR(file.Get("trim_fraction", &o->trim_fraction));
  SV_RETURN_IF_ERROR(file.Get("krum_byzantine", &o->krum_byzantine));
  SV_RETURN_IF_ERROR(file.Get("krum_selected", &o->krum_selected));
  return absl::OkStatus();
}

std::string StrategyToToml(const StrategyOptions& o) {
  auto number = [](double v) { return absl::StrFormat("%.17g", v); };
  return absl::StrCat(
      "strategy = ", TomlQuote(o.name), "\n",
      o.server_learning_rate.has_value()
          ? absl::StrCat("server_learning_rate = ", number(*o.server_learning_rate), "\n")
          : "",
      "server_momentum = ", number(o.server_momentum), "\n",
      "beta1 = ", number(o.beta1), "\n",
      "beta2 = ", number(o.beta2), "\n",
      "tau = ", number(o.tau), "\n",
      "trim_fraction = ", number(o.trim_fraction), "\n",
      "krum_byzantine = ", o.krum_byzantine, "\n",
      "krum_selected = ", o.krum_selected, "\n");
}

absl::StatusOr<std::unique_ptr<Strategy>> MakeStrategy(const StrategyOptions& options) {
  SV_RETURN_IF_ERROR(options.Validate());
  const double lr = options.effective_server_learning_rate();
  const std::string& name = options.name;
  if (name == "fedavg" || name == "fedprox") return MakeFedAvg(lr);
  if (name == "fedavgm") return internal::MakeFedAvgM(lr, options.server_momentum);
  if (IsAdaptive(name)) {
    const internal::AdaptiveKind kind = name == "fedadam"   ? internal::AdaptiveKind::kAdam
                                        : name == "fedyogi" ? internal::AdaptiveKind::kYogi
                                                            : internal::AdaptiveKind::kAdagrad;
    return internal::MakeFedOpt(kind, lr, options.beta1, options.beta2, options.tau);
  }
  if (name == "median") return internal::MakeCoordinateMedian(lr);
  if (name == "trimmed-mean") return internal::MakeTrimmedMean(lr, options.trim_fraction);
  return internal::MakeMultiKrum(lr, options.krum_byzantine, options.krum_selected);
}

}  // namespace samverka::coordinator
