// simulation/virtual_clients.h
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "client/task_handler.h"
#include "common/dataset.h"
#include "common/task.h"
#include "models/model.h"
#include "simulation/attack.h"

namespace samverka::simulation {

// The virtual clients of a simulation: a TaskHandler per data shard (the
// code a real site runs) and, for the malicious ones, their attack. A
// label-flipping client trains on a flipped copy of its shard; a sign-flip
// or scaling client trains honestly and poisons the update it sends.
// Thread-compatible like TaskHandler: Run is const; `train` must outlive it.
class VirtualClients {
 public:
  // One client per shard of `train`; round(malicious_fraction * clients) of
  // them, chosen by `seed`, are malicious and run `attack`.
  VirtualClients(const Dataset* train, const std::vector<std::vector<int64_t>>& shards,
                 uint64_t seed, double malicious_fraction, const AttackSpec& attack);

  // Runs `task` for client `index` on `model` (see TaskHandler::Run); the
  // encoded update of a model-poisoning client is already poisoned.
  absl::StatusOr<TaskOutcome> Run(int index, const ClientTask& task,
                                  const ModelParameters& global, models::Model& model) const;

  // Number of clients, one per shard.
  int size() const { return static_cast<int>(handlers_.size()); }
  // Whether client `index` runs the attack; fixed for the object's life.
  bool malicious(int index) const { return malicious_[index]; }
  int num_malicious() const;
  // Training samples of client `index` (its update's weight).
  int64_t num_train_samples(int index) const { return handlers_[index].num_train_samples(); }

 private:
  AttackSpec attack_;
  std::vector<bool> malicious_;
  std::vector<std::unique_ptr<Dataset>> flipped_shards_;
  std::vector<client::TaskHandler> handlers_;
};

}  // namespace samverka::simulation
