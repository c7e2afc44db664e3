// client/task_handler.h
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "common/task.h"
#include "common/dataset.h"
#include "common/parameters.h"
#include "models/model.h"

namespace samverka::client {

// Runs a site's tasks on its local data: sets the global model, trains or
// evaluates, and returns the encoded update and metrics. The same code runs
// in the client daemon and for each virtual client of a simulation. The
// data is borrowed (it must outlive the handler); a virtual client is just
// a list of sample indices into a shared data set. Thread-compatible: Run is
// const, so one handler may serve several threads, each with its own Model.
class TaskHandler {
 public:
  // `train_indices` / `eval_indices` select samples of `train` / `eval`
  // (all samples when empty). `eval` may be null (no local evaluation).
  TaskHandler(const Dataset* train, std::vector<int64_t> train_indices, const Dataset* eval,
              std::vector<int64_t> eval_indices, uint64_t seed);

  // Runs `task` starting from `global` on `model` (a worker's instance,
  // overwritten). kInvalidArgument when the global model does not fit the
  // model's layout, kFailedPrecondition for an evaluation task without
  // evaluation data, kInternal when training diverges (NaN update) or
  // LibTorch fails.
  absl::StatusOr<TaskOutcome> Run(const ClientTask& task, const ModelParameters& global,
                                  models::Model& model) const;

  int64_t num_train_samples() const;
  int64_t num_eval_samples() const;

 private:
  absl::StatusOr<TaskOutcome> Train(const ClientTask& task, const ModelParameters& global,
                                    models::Model& model) const;
  absl::StatusOr<TaskOutcome> Evaluate(const ClientTask& task, models::Model& model) const;

  const Dataset* train_;
  std::vector<int64_t> train_indices_;
  const Dataset* eval_;
  std::vector<int64_t> eval_indices_;
  uint64_t seed_;
};

// A seed for one client's task in one round, mixed from the client's seed
// and the round (SplitMix64), so runs do not depend on scheduling.
uint64_t TaskSeed(uint64_t client_seed, int64_t round);

}  // namespace samverka::client
