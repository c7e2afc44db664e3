// simulation/simulation.h
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/task.h"
#include "coordinator/strategy.h"

namespace samverka::simulation {

// Everything `samverka simulate` can be told; each field is also a TOML key
// of the same name (see docs/configuration.md).
struct SimulationOptions {
  std::string dataset = "fashion-mnist";  // fashion-mnist | mnist | csv:PATH:LABEL | csv:PATH:COL,COL
  // What is learned (docs/tasks.md): classification | regression | survival
  // | multilabel. For a CSV, the spec's columns are the label (one), the
  // targets (regression, multilabel) or time,event (survival).
  std::string task = "classification";
  double huber_delta = 0;                 // regression: 0 = MSE, > 0 = Huber (standard deviations)
  std::string class_weights;              // classification: "w0,w1,..." (empty: all 1)
  std::string data_dir;                   // where IDX files live (default per dataset)
  double test_fraction = 0.2;             // CSV data: share held out for testing
  std::string model = "cnn";              // cnn | mlp | logreg | FILE.pt
  int clients = 100;
  int clients_per_round = 10;             // 0: use fraction
  double fraction = 0.0;
  int rounds = 50;
  std::string partition = "iid";          // iid | dirichlet:A | shards:K
  TrainOptions train;                     // local_epochs, batch_size, lr, ...
  uint64_t seed = 0;
  std::string out = "runs/simulation";
  // Worker threads training clients in parallel (0: one per core). With one
  // worker, the same seed gives the same numbers bit for bit.
  int workers = 0;
  bool show_partition = false;            // print each client's label counts
  // SecAgg+ among the virtual clients (on by default, as in the real
  // federation): the coordinator's engine sees only the sum of each round's
  // updates (docs/protocol.md).
  bool secure_aggregation = true;
  double secagg_clip_range = 8.0;         // updates are clipped to [-c, c]

  // --- Aggregation strategy and attacks (docs/simulation.md) ---
  // The coordinator's strategy and its parameters (the TOML keys strategy,
  // server_learning_rate, ...; FedProx's proximal_mu is train.proximal_mu).
  coordinator::StrategyOptions strategy;
  // Share of the virtual clients that are malicious, in [0, 1]; which ones
  // is fixed for the run by `seed`.
  double malicious_fraction = 0.0;
  // What they do: sign-flip | scale:S | label-flip (simulation/attack.h).
  std::string attack = "sign-flip";
  // --- Differential privacy: DP-FedAvg (docs/privacy.md) ---
  // off | central (the coordinator noises the sum) | distributed (each
  // client adds discrete Gaussian noise before masking; needs
  // secure_aggregation).
  std::string dp = "off";
  double dp_noise_multiplier = 1.0;       // z: noise stddev / clip norm
  double dp_clip_norm = 1.0;              // C (initial C with adaptive clipping)
  bool dp_adaptive_clip = false;          // Andrew et al. 2021
  double dp_target_quantile = 0.5;        // adaptive: share of updates within C
  double dp_clip_learning_rate = 0.2;     // adaptive: eta_C
  double dp_count_noise = 0;              // adaptive: sigma_b (0: cohort / 20)
  double dp_delta = 1e-5;                 // delta of the reported epsilon
  // --- end of differential privacy ---

  // kInvalidArgument naming the bad option (e.g. clients_per_round > clients).
  absl::Status Validate() const;
};

// Reads the keys of a simulation config file into `options`; unknown keys
// and wrong types are errors naming the key and the file.
absl::Status ApplyConfig(ConfigFile& file, SimulationOptions* options);

// The resolved configuration as a TOML document that ApplyConfig reads back.
std::string ToToml(const SimulationOptions& options);

// One finished round, as reported to the progress callback.
struct RoundReport {
  int64_t round = 0;
  int rounds = 0;
  int clients = 0;
  bool succeeded = false;
  double train_loss = 0;
  double test_loss = 0;
  double test_accuracy = 0;
  double test_auc = -1;  // binary tasks only, else < 0
  // Every metric of the task on the test set (models::EvalStats::Metrics).
  std::map<std::string, double> test_metrics;
  double seconds = 0;
  double aggregate_seconds = 0;  // decoding, validating, absorbing, re-encoding
  uint64_t bytes_up = 0;
  uint64_t bytes_down = 0;
  // Differential privacy (dp != off): epsilon after this round at dp_delta,
  // and the clipping norm the round used; < 0 when DP is off.
  double epsilon = -1;
  double dp_clip_norm = -1;
};

// The metric a run is summed up by: accuracy, r2, c_index or macro_f1 for
// the task named `task` (an unknown task gives accuracy).
std::string HeadlineMetric(const std::string& task);

// Runs a whole simulated federation in this process: loads and partitions
// the data, creates one virtual client per shard and drives the
// coordinator's RoundEngine with the clients' TaskHandler, exactly the code
// the real coordinator and daemon run, without the network. Writes
// OUT/metrics.jsonl, OUT/metrics.csv, OUT/model.pt and OUT/config.toml.
// Returns the last round's report.
absl::StatusOr<RoundReport> RunSimulation(
    const SimulationOptions& options,
    const std::function<void(const RoundReport&)>& on_round = nullptr);

}  // namespace samverka::simulation
