#include "simulation/virtual_clients.h"

#include <algorithm>

namespace samverka::simulation {

VirtualClients::VirtualClients(const Dataset* train,
                               const std::vector<std::vector<int64_t>>& shards, uint64_t seed,
                               double malicious_fraction, const AttackSpec& attack)
    : attack_(attack),
      malicious_(ChooseMalicious(static_cast<int>(shards.size()), malicious_fraction, seed)) {
  const int clients = static_cast<int>(shards.size());
  for (int i = 0; i < clients; ++i) {
    const uint64_t client_seed = client::TaskSeed(seed, -1 - i);
    if (malicious_[i] && attack_.kind == AttackSpec::Kind::kLabelFlip) {
      flipped_shards_.push_back(std::make_unique<Dataset>(FlipLabels(*train, shards[i])));
      // The flipped copy holds exactly the shard, in shard order, so the
      // client sees the same batches as an honest one, with flipped labels.
      handlers_.emplace_back(flipped_shards_.back().get(), std::vector<int64_t>{}, nullptr,
                             std::vector<int64_t>{}, client_seed);
    } else {
      handlers_.emplace_back(train, shards[i], nullptr, std::vector<int64_t>{}, client_seed);
    }
  }
}

int VirtualClients::num_malicious() const {
  return static_cast<int>(std::count(malicious_.begin(), malicious_.end(), true));
}

absl::StatusOr<TaskOutcome> VirtualClients::Run(int index, const ClientTask& task,
                                                const ModelParameters& global,
                                                models::Model& model) const {
  absl::StatusOr<TaskOutcome> outcome = handlers_[index].Run(task, global, model);
  if (!outcome.ok() || !malicious_[index] || attack_.kind == AttackSpec::Kind::kLabelFlip ||
      task.kind != TaskKind::kTrain) {
    return outcome;
  }
  absl::StatusOr<std::string> poisoned = PoisonEncodedUpdate(attack_, outcome->update);
  if (!poisoned.ok()) return poisoned.status();
  outcome->update = std::move(*poisoned);
  return outcome;
}

}  // namespace samverka::simulation
