// common/task.h
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

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
  // What the coordinator says this round costs, for the site's own
  // privacy ledger (client.toml max_epsilon): the noise multiplier on the
  // sum, the sampling rate q and delta. 0: not stated.
  double noise_multiplier = 0;
  double sampling_rate = 0;
  double delta = 0;
};

// kConsent: release the consent seed of a secure sum the site contributed
// to (after a coordinator restart, to complete that sum; no training).
// kStatistics: compute a statistics study's vector (statistics/) on the
// study's data set and send it masked (always securely aggregated).
enum class TaskKind { kTrain, kEvaluate, kConsent, kStatistics };

// The message stages of secure aggregation (SecAgg+, docs/protocol.md), in
// order: advertise keys, share keys, masked input, unmask, and consent (the
// site releases its consent seed once the masked sum is stored;
// security/secagg/consent.h).
enum class SecureStage {
  kAdvertiseKeys = 0,
  kShareKeys = 1,
  kMaskedInput = 2,
  kUnmask = 3,
  kConsent = 4,
};
const char* SecureStageName(SecureStage stage);

// Coordinates a site appends to its update in a secure round, so only their
// weighted sums are revealed: training loss, share of clipped values, and
// the DP-FedAvg within-clip bit (client/secure_aggregation.cc encodes them,
// coordinator/secure_round.cc decodes them).
inline constexpr uint64_t kSecureExtraCoordinates = 3;

// Secure aggregation settings of a training task (see docs/protocol.md).
struct SecureAggregationTask {
  // The SecAgg+ RoundConfig in its wire format (security/secagg/messages.h).
  std::string round_config;
  // This client's participant id in the round.
  uint32_t participant_id = 0;
  // Consent tasks only: the instance (roster digest) whose sum to release.
  std::string consent_instance;
};

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
  // Sites in the round's cohort (for the site's min_cohort policy).
  int cohort_size = 0;
  // Set when the round aggregates securely: the client then sends only a
  // masked update.
  std::optional<SecureAggregationTask> secure_aggregation;
  // Differential privacy: clip the update before it is sent.
  DpOptions dp;
  // The signed study the task belongs to (empty in a single-run
  // federation): the site takes the model, the data set and the training
  // options from that study's manifest (client/study_check.h).
  std::string study_id;
};

// What the federation trains, from the coordinator's config: a site takes
// the input shape, the number of classes and the label set from here, never
// from its own data, so a site holding one class only trains the same model.
struct FederationModel {
  // A built-in name ("mlp") or the file name of a TorchScript model.
  std::string model;
  std::vector<int64_t> input_shape;
  int64_t num_classes = 0;
  // Optional names of the classes in class-id order (num_classes of them):
  // a site maps label names in its data through them.
  std::vector<std::string> class_labels;
};

// What a site states about itself when it registers (counts and shapes,
// nothing of the data), so the coordinator never selects a site that
// cannot train its model.
struct SiteOffer {
  // Shape of one sample of the site's data; empty if not stated (an older
  // client).
  std::vector<int64_t> sample_shape;
  // File name of the site's TorchScript model_file, empty if it has none.
  std::string model_file;
  // Set when the site found it cannot serve the federation's model (why,
  // never anything of the data).
  std::string cannot_serve_reason;
};

// The shape as "[1, 28, 28]", for messages.
std::string ShapeString(const std::vector<int64_t>& shape);
// Number of values in one sample of `shape` (1 for an empty shape).
int64_t ShapeElements(const std::vector<int64_t>& shape);

// OK if a site with `offer` can train `model`; kFailedPrecondition saying
// what does not fit (the feature count, the missing TorchScript file, or the
// reason the site gave) otherwise. Checks only what the offer states.
absl::Status CheckSiteCanServe(const FederationModel& model, const SiteOffer& offer);

// What a client sends back: the encoded update (train tasks) and metrics.
struct TaskOutcome {
  std::string task_id;
  int64_t round = 0;
  TaskKind kind = TaskKind::kTrain;
  std::string model_digest;
  // Training samples (the update's weight) or evaluation samples.
  int64_t num_samples = 0;
  // Train tasks: the codec bundle of (local model - global model), or with
  // `masked` the serialised SecAgg+ MaskedInput.
  std::string update;
  bool masked = false;
  // With a masked input: the site's commitment to its consent seed
  // (security/secagg/consent.h).
  std::string consent_commitment;
  // train_loss; for evaluation loss, accuracy and (binary tasks) auc.
  std::map<std::string, double> metrics;
};

}  // namespace samverka
