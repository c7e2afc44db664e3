// coordinator/strategy.h
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/parameters.h"

namespace samverka::coordinator {

// How a round's client updates combine into the next global model. An
// update is a client's model minus the round's global model. Streaming
// strategies (FedAvg and the server optimisers) fold each update into a
// weighted sum, so memory is O(model) whatever the number of clients; robust
// strategies need each update and buffer them, O(clients x model).
// Not thread-safe: the round engine serialises calls.
class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;

  // True if the strategy needs each client's update (robust aggregation);
  // such a strategy cannot run with secure aggregation, which reveals only
  // the sum.
  virtual bool needs_individual_updates() const { return false; }

  // Starts a round on a model of `model_size` values. The strategy never
  // holds a copy of the model (the engine does; Finish gets it).
  // kInvalidArgument if the size differs from the one the strategy's state
  // was made for.
  virtual absl::Status BeginRound(size_t model_size) = 0;
  // Absorbs one update with its weight (the client's sample count).
  // kInvalidArgument for a wrong size or a non-positive weight.
  virtual absl::Status Absorb(std::span<const float> update, double weight) = 0;
  // Absorbs an already weighted sum of updates, sum_i w_i * update_i, with
  // total weight sum_i w_i: what secure aggregation reveals. Strategies
  // that need individual updates return kFailedPrecondition.
  virtual absl::Status AbsorbAggregate(std::span<const double> weighted_sum,
                                       double total_weight) = 0;
  // Moves `model` from the values the round started from to the next
  // global model, in place, and the strategy's state to the next round
  // (server optimisers). The round's accumulated updates are released
  // before it returns. kFailedPrecondition if no update was absorbed since
  // BeginRound, or too few for the strategy (Krum); kInvalidArgument if
  // `model` has another size than at BeginRound. On error `model` is
  // unchanged.
  virtual absl::Status FinishInPlace(std::span<float> model) = 0;
  // The same on a copy: the next model's values from `global`.
  absl::StatusOr<std::vector<float>> Finish(std::span<const float> global);
};

// A strategy by name with its parameters: what the configuration selects.
// Parameters a strategy does not use are ignored. Defaults follow the papers.
struct StrategyOptions {
  // fedavg | fedavgm | fedprox | fedadam | fedyogi | fedadagrad |
  // median | trimmed-mean | krum
  std::string name = "fedavg";
  // eta: the global model moves by eta times the aggregated update. Unset:
  // 0.01 for fedadam / fedyogi / fedadagrad (Reddi et al. 2021), else 1.
  std::optional<double> server_learning_rate;
  // FedAvgM's server momentum beta in [0, 1) (Hsu et al. 2019).
  double server_momentum = 0.9;
  // Adaptive optimisers (Reddi et al. 2021, Algorithm 2): first and second
  // moment decay in [0, 1) (beta2 unused by fedadagrad), and the adaptivity
  // tau > 0 that bounds the step where the second moment is small.
  double beta1 = 0.9;
  double beta2 = 0.99;
  double tau = 1e-3;
  // Trimmed mean: share of values dropped at each end per coordinate, [0, 0.5).
  double trim_fraction = 0.1;
  // Multi-Krum (Blanchard et al. 2017): f, the Byzantine clients tolerated,
  // and m, how many updates with the lowest scores are averaged (0: n - f).
  int krum_byzantine = 1;
  int krum_selected = 0;

  // The server learning rate in effect (the set one or the default).
  double effective_server_learning_rate() const;
  // True for median, trimmed-mean and krum.
  bool needs_individual_updates() const;

  // kInvalidArgument naming the parameter: an unknown name (listing the
  // known ones), server_learning_rate <= 0, momentum or betas outside
  // [0, 1), tau <= 0, trim_fraction outside [0, 0.5), krum_byzantine < 0,
  // krum_selected < 0.
  absl::Status Validate() const;

  // Checks that the strategy fits the federation it will run in, at
  // start-up: `min_updates` is the fewest updates a successful round can
  // have, `secure_aggregation` whether only sums reach the strategy, and
  // `proximal_mu` the clients' FedProx term. kInvalidArgument if a robust
  // strategy meets secure aggregation, Krum could see n <= 2f + 2 updates
  // or more selected than n - f, or fedprox has proximal_mu = 0.
  absl::Status ValidateFor(int min_updates, bool secure_aggregation, double proximal_mu) const;
};

// Reads the strategy keys of a config file (strategy, server_learning_rate,
// server_momentum, beta1, beta2, tau, trim_fraction, krum_byzantine,
// krum_selected) into `options`; wrong types are errors naming key and file.
// The caller validates.
absl::Status ApplyStrategyConfig(ConfigFile& file, StrategyOptions* options);

// The same keys as TOML lines that ApplyStrategyConfig reads back.
std::string StrategyToToml(const StrategyOptions& options);

// The names MakeStrategy knows, in a fixed order.
std::vector<std::string> StrategyNames();

// The strategy `options` describes; the errors of StrategyOptions::Validate.
absl::StatusOr<std::unique_ptr<Strategy>> MakeStrategy(const StrategyOptions& options);

// FedAvg (McMahan et al. 2017): the sample-weighted mean of the updates,
// added to the global model (scaled by `server_learning_rate`, 1 for the
// original algorithm). Accumulates in double precision.
std::unique_ptr<Strategy> MakeFedAvg(double server_learning_rate = 1.0);

}  // namespace samverka::coordinator
