// common/task.h
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"

namespace samverka {

// Local training hyper-parameters (plain SGD, as in McMahan et al. 2017).
struct TrainOptions {
  double learning_rate = 0.05;
  double momentum = 0.0;
  double weight_decay = 0.0;
  int local_epochs = 1;
  int batch_size = 32;
  // FedProx (Li et al. 2020): adds mu/2 * ||w - w_start||^2 to the loss.
  double proximal_mu = 0.0;

  // kInvalidArgument naming the first out-of-range field.
  absl::Status Validate() const;
};


// Differential privacy on the client side of DP-FedAvg (McMahan et al.
// 2018): the update (local minus global model) is L2-clipped to
// clip_norm where it is computed, before it leaves the site; the noise is
// added by the coordinator (central) or to the masked sum (distributed),
// see security/dp/dp.h. clip_norm 0: no clipping (DP off).
struct DpOptions {
  double clip_norm = 0;
};

enum class TaskKind { kTrain, kEvaluate };

// One unit of work for a client in a round (the gRPC adapters convert the
// proto Task to and from this). Shared by coordinator and client.
struct ClientTask {
  std::string task_id;
  int64_t round = 0;
  TaskKind kind = TaskKind::kTrain;
  // SHA-256 of the encoded global model the task starts from.
  std::string model_digest;
  // The architecture: a built-in name, or the file name of a TorchScript
  // model that the site holds.
  std::string model;
  TrainOptions train;
  // Seconds the client has to return its result.
  double deadline_seconds = 0;
  // Differential privacy: clip the update before it is sent.
  DpOptions dp;
};

// What a client sends back: the encoded update (train tasks) and metrics.
struct TaskOutcome {
  std::string task_id;
  int64_t round = 0;
  TaskKind kind = TaskKind::kTrain;
  std::string model_digest;
  // Training samples (the update's weight) or evaluation samples.
  int64_t num_samples = 0;
  // Train tasks: the codec bundle of (local model - global model).
  std::string update;
  // train_loss; for evaluation loss, accuracy and (binary tasks) auc.
  std::map<std::string, double> metrics;
};

}  // namespace samverka
