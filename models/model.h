// models/model.h
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/dataset.h"
#include "common/parameters.h"
#include "common/task.h"
#include "models/tasks/task_type.h"

namespace samverka::models {

using TrainOptions = ::samverka::TrainOptions;

// What one call of Model::Train did.
struct TrainStats {
  double mean_loss = 0;  // mean training loss over the samples seen
  int64_t samples = 0;   // samples seen, counting each epoch
  int64_t steps = 0;     // optimiser steps
};

// What evaluating a model on some samples found; mergeable, so a test set
// can be split across workers or clients and the metrics of the union are
// exact (models/tasks/metrics.h).
struct EvalStats {
  // Sum of the per-sample evaluation loss (0 for survival, whose loss comes
  // from all predictions at once: see loss()).
  double loss_sum = 0;
  int64_t correct = 0;  // classification: argmax equals the label
  int64_t samples = 0;
  // Binary classification only: the positive-class probability and the
  // label of each sample, for the ROC AUC.
  std::vector<float> positive_scores;
  std::vector<int64_t> labels;

  TaskType task = TaskType::kClassification;
  // Classification: the num_classes x num_classes confusion matrix, row =
  // true class, column = predicted (empty if not recorded).
  int64_t num_classes = 0;
  std::vector<int64_t> confusion{};
  // Other tasks, per sample: `output_width` predictions and `target_width`
  // targets, both in the data's own units (regression: unstandardised;
  // survival: log risk, and time and event; multilabel: probabilities and
  // 0/1).
  int64_t output_width = 0;
  int64_t target_width = 0;
  std::vector<float> predictions{};
  std::vector<float> targets{};
  // Survival with the built-in loss: loss() is Cox's partial likelihood of
  // all predictions (loss_sum stays 0).
  bool cox_loss = false;

  // Mean loss per sample; survival: Cox's negative log partial likelihood
  // (Breslow) of all predictions, per event.
  double loss() const;
  double accuracy() const { return samples ? static_cast<double>(correct) / samples : 0; }
  // ROC AUC over positive_scores; nullopt for non-binary tasks or one class.
  std::optional<double> auc() const;
  // The task's metrics by name (docs/tasks.md): loss, and classification
  // accuracy, balanced_accuracy, macro_f1, auc (binary); regression mse,
  // rmse, mae, r2; survival c_index; multilabel micro_f1, macro_f1,
  // mean_auc and auc_NAME per label (`target_names`, else its index). A
  // metric that is undefined on these samples (an AUC with one class) is
  // left out.
  std::map<std::string, double> Metrics(const std::vector<std::string>& target_names = {}) const;
  void Merge(const EvalStats& other);
};

// A trainable model for one task (models/tasks/task_type.h): one of the
// built-in architectures or a TorchScript module. It hides every LibTorch type so that the rest of Samverka compiles
// without torch headers. An instance is used by one thread at a time
// (simulation workers each own one); it is not thread-safe.
class Model {
 public:
  virtual ~Model() = default;

  // "cnn", "mlp", "logreg" or the TorchScript file's path.
  virtual const std::string& name() const = 0;
  // The float32 tensors exchanged with the coordinator, in a fixed order.
  virtual const ParameterLayout& layout() const = 0;

  // Copies the model state into `out` (size layout().num_elements()).
  virtual void GetParameters(std::span<float> out) const = 0;
  ModelParameters GetParameters() const;
  // kInvalidArgument if `values` has the wrong size.
  virtual absl::Status SetParameters(std::span<const float> values) = 0;

  // Trains on `indices` of `data` (all samples when empty), shuffling with a
  // generator seeded by `seed` so results do not depend on thread timing.
  // kInvalidArgument if the data's sample shape or labels do not fit the
  // model; kInternal if LibTorch fails.
  virtual absl::StatusOr<TrainStats> Train(const Dataset& data,
                                           std::span<const int64_t> indices,
                                           const TrainOptions& options, uint64_t seed) = 0;

  // Evaluates on `indices` of `data` (all samples when empty).
  virtual absl::StatusOr<EvalStats> Evaluate(const Dataset& data,
                                             std::span<const int64_t> indices,
                                             int batch_size = 256) = 0;

  // Writes the model as a TorchScript archive that PyTorch's torch.jit.load
  // opens (parameter names match a PyTorch state_dict).
  virtual absl::Status SaveTorchScript(const std::string& path) const = 0;

  // A new, independent instance with the same architecture and state.
  virtual absl::StatusOr<std::unique_ptr<Model>> Clone() const = 0;
};

// What to build: a built-in name or a path ending in .pt/.pth (TorchScript).
struct ModelSpec {
  std::string name_or_path = "cnn";
  // Shape of one input sample, e.g. {1, 28, 28} or {30}.
  std::vector<int64_t> input_shape;
  // Width of the model's output: the number of classes for classification,
  // else OutputWidth(task, data) (regression targets, 1 for survival,
  // labels for multilabel).
  int64_t num_classes = 0;
};

// Names of the built-in architectures (the same as samverka::
// BuiltinModelNames in common/model_names.h, which needs no LibTorch).
std::vector<std::string> BuiltinModelNames();

// samverka::CheckModelName (common/model_names.h): OK if `name_or_path`
// names a built-in or an existing file; kNotFound (listing the built-ins)
// otherwise.
absl::Status CheckModelName(const std::string& name_or_path);

// Builds a model, initialising built-ins from `seed`. kNotFound for an
// unknown name or missing file (the message lists the built-ins),
// kInvalidArgument when the architecture cannot take `input_shape`, and for
// a TorchScript file that fails to load or to run on a sample input.
// `task` sets the loss and metrics; a TorchScript module with a method
// `loss(self, output, target) -> Tensor` is trained with that instead of the
// task's built-in loss (docs/tasks.md has the contract). kInvalidArgument
// also for a bad `task` and when the output width does not fit it.
absl::StatusOr<std::unique_ptr<Model>> CreateModel(const ModelSpec& spec, uint64_t seed,
                                                   const TaskOptions& task = {});

// Sets LibTorch's intra-op thread count for this process (1 for simulation
// workers, which parallelise across clients instead).
void SetTorchThreads(int threads);

}  // namespace samverka::models
