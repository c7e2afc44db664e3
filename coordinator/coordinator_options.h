// coordinator/coordinator_options.h
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coordinator/round_engine.h"
#include "coordinator/secure_round.h"
#include "coordinator/strategy.h"
#include "security/dp/dp.h"

namespace samverka::coordinator {

// Everything a coordinator needs to run a federation (coordinator.toml;
// see docs/configuration.md).
struct CoordinatorOptions {
  std::string federation_id;
  // A standing federation: coordinator.toml names no study; studies are
  // submitted by operators (`samverka study submit`) and run one after
  // another. false: coordinator.toml still carries one study's keys, which
  // runs and ends the federation (the single-run form).
  bool standing = false;
  // Studies that train at the same time; the others queue in submission
  // order. This version runs one at a time.
  int max_active_studies = 1;
  // Built-in architecture or TorchScript file, and the data it takes.
  std::string model = "mlp";
  std::vector<int64_t> input_shape;
  int64_t num_classes = 0;
  // Optional names of the classes in class-id order (num_classes of them),
  // so sites map label names in their data to the same ids.
  std::vector<std::string> class_labels;
  int rounds = 10;
  // After a failed round the next one waits this long, doubling with each
  // failure in a row up to max_failed_round_backoff, so failing rounds do
  // not burn the federation's rounds in seconds.
  absl::Duration failed_round_backoff = absl::Seconds(1);
  absl::Duration max_failed_round_backoff = absl::Seconds(60);
  RoundOptions round;
  // Sites to wait for before this process runs its first round (0:
  // round.min_clients), so a consortium starts with everyone.
  int wait_for_clients = 0;
  // How updates combine (fedavg, fedadam, median, ...). A robust strategy
  // needs min_clients > 2 * krum_byzantine + 2 for krum and no secure
  // aggregation.
  StrategyOptions strategy;
  // Federated evaluation of each new model on the participants' held-out data.
  bool federated_evaluation = true;
  absl::Duration eval_deadline = absl::Seconds(60);
  // Clients send a heartbeat at this interval while they train; a client
  // silent for three intervals is taken for dead.
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // Longest a PollTask call is held open.
  absl::Duration max_poll = absl::Seconds(20);
  // Uploads received and decoded at the same time; the others wait (gRPC
  // flow control holds their senders back). Each one costs about twice the
  // encoded model in memory, so this bounds the coordinator's peak.
  int max_concurrent_uploads = 2;
  // Model downloads streamed at the same time; the others wait.
  int max_concurrent_downloads = 8;
  // The most training (or evaluation) samples one site may register: its
  // weight in FedAvg is its sample count, so this bounds one site's say.
  int64_t max_samples_per_site = 1'000'000'000;
  // A model download or upload with no chunk moving for this long is cut
  // (it holds a slot others wait for).
  absl::Duration transfer_stall = absl::Seconds(60);
  uint64_t seed = 0;
  std::string state_dir;
  // Optional test set evaluated at the coordinator after each round, as a
  // data set spec (csv:PATH:LABEL or an IDX data set; the whole of it is the
  // test set). Loaded and evaluated by a `samverka-torch model evaluate`
  // child, never in this process.
  std::string test_dataset;
  // The samverka-torch executable whose `model` command builds the initial
  // model and evaluates on test_dataset in child processes, so this process
  // never loads LibTorch or a TorchScript file. Empty: samverka-torch next
  // to the running executable.
  std::string model_helper;
  // Secure aggregation (on by default): the coordinator learns only the
  // sum of each round's updates. Needs the federation CA (PEM) to check the
  // keys sites sign, and cohorts of at least 3.
  SecureAggregationOptions secure_aggregation;
  std::string ca_pem;
  // Differential privacy (DP-FedAvg, central: the coordinator adds the
  // noise to the secure sum). dp_population: the sites that could be
  // sampled (q = cohort / population).
  security::dp::DpConfig dp;
  int64_t dp_population = 0;
  // Sites per round as DP accounting assumes it (clients_per_round, or
  // fraction * dp_population, within [min_clients, max_clients]).
  double ExpectedCohort() const;

  // The federation's fields (id, state, times, limits).
  absl::Status ValidateFederation() const;
  // Everything: the federation's fields and the study's.
  absl::Status Validate() const;
};

}  // namespace samverka::coordinator
