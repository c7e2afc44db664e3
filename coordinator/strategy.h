// coordinator/strategy.h
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/parameters.h"

namespace samverka::coordinator {

// How a round's client updates combine into the next global model. Updates
// stream in one at a time, so memory is O(model) whatever the number of
// clients. An update is a client's model minus the round's global model.
// Not thread-safe: the round engine serialises calls.
class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;

  // Starts a round whose clients started from `global`.
  virtual absl::Status BeginRound(const ModelParameters& global) = 0;
  // Absorbs one update with its weight (the client's sample count).
  // kInvalidArgument for a wrong size or a non-positive weight.
  virtual absl::Status Absorb(std::span<const float> update, double weight) = 0;
  // Absorbs an already weighted sum of updates, sum_i w_i * update_i, with
  // total weight sum_i w_i: what secure aggregation reveals. Strategies
  // that need individual updates return kFailedPrecondition.
  virtual absl::Status AbsorbAggregate(std::span<const double> weighted_sum,
                                       double total_weight) = 0;
  // The next global model's values. kFailedPrecondition if no update was
  // absorbed since BeginRound.
  virtual absl::StatusOr<std::vector<float>> Finish() = 0;
};

// FedAvg (McMahan et al. 2017): the sample-weighted mean of the updates,
// added to the global model (scaled by `server_learning_rate`, 1 for the
// original algorithm). Accumulates in double precision.
std::unique_ptr<Strategy> MakeFedAvg(double server_learning_rate = 1.0);

}  // namespace samverka::coordinator
