#include "client/task_handler.h"

#include "absl/strings/str_cat.h"
#include "common/codec.h"
#include "common/status_macros.h"
#include "security/dp/noise.h"

namespace samverka::client {

uint64_t TaskSeed(uint64_t client_seed, int64_t round) {
  uint64_t z = client_seed + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(round + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

TaskHandler::TaskHandler(const Dataset* train, std::vector<int64_t> train_indices,
                         const Dataset* eval, std::vector<int64_t> eval_indices, uint64_t seed)
    : train_(train),
      train_indices_(std::move(train_indices)),
      eval_(eval),
      eval_indices_(std::move(eval_indices)),
      seed_(seed) {}

int64_t TaskHandler::num_train_samples() const {
  if (train_ == nullptr) return 0;
  return train_indices_.empty() ? train_->num_samples()
                                : static_cast<int64_t>(train_indices_.size());
}

int64_t TaskHandler::num_eval_samples() const {
  if (eval_ == nullptr) return 0;
  return eval_indices_.empty() ? eval_->num_samples()
                               : static_cast<int64_t>(eval_indices_.size());
}

absl::StatusOr<TaskOutcome> TaskHandler::Run(const ClientTask& task,
                                             const ModelParameters& global,
                                             models::Model& model) const {
  if (global.layout != model.layout()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the global model of round ", task.round, " does not fit the local model '",
        model.name(), "'; expected tensors:\n", model.layout().Describe()));
  }
  SV_RETURN_IF_ERROR(model.SetParameters(global.values));
  if (task.kind == TaskKind::kEvaluate) return Evaluate(task, model);
  return Train(task, global, model);
}

absl::StatusOr<TaskOutcome> TaskHandler::Train(const ClientTask& task,
                                               const ModelParameters& global,
                                               models::Model& model) const {
  if (num_train_samples() == 0) {
    return absl::FailedPreconditionError("this client has no training data");
  }
  SV_ASSIGN_OR_RETURN(models::TrainStats stats,
                      model.Train(*train_, train_indices_, task.train,
                                  TaskSeed(seed_, task.round)));
  ModelParameters update = model.GetParameters();
  for (size_t i = 0; i < update.values.size(); ++i) update.values[i] -= global.values[i];
  if (absl::Status finite = CheckFinite(update.values, "local update"); !finite.ok()) {
    return absl::InternalError(absl::StrCat("training diverged in round ", task.round, ": ",
                                            finite.message(),
                                            "; lower the learning rate"));
  }
  TaskOutcome out;
  if (task.dp.clip_norm > 0) {
    // DP-FedAvg: clip here, before the update leaves the site. Only one bit
    // (was the norm within the bound) is reported, for adaptive clipping.
    SV_ASSIGN_OR_RETURN(security::dp::ClipResult clip,
                        security::dp::ClipL2(update.values, task.dp.clip_norm));
    out.metrics["dp_within_clip"] = clip.clipped ? 0.0 : 1.0;
  }
  out.task_id = task.task_id;
  out.round = task.round;
  out.kind = TaskKind::kTrain;
  out.model_digest = task.model_digest;
  out.num_samples = num_train_samples();
  out.update = EncodeParameters(update);
  out.metrics["train_loss"] = stats.mean_loss;
  return out;
}

absl::StatusOr<TaskOutcome> TaskHandler::Evaluate(const ClientTask& task,
                                                  models::Model& model) const {
  if (num_eval_samples() == 0) {
    return absl::FailedPreconditionError("this client has no evaluation data");
  }
  SV_ASSIGN_OR_RETURN(models::EvalStats stats, model.Evaluate(*eval_, eval_indices_));
  TaskOutcome out;
  out.task_id = task.task_id;
  out.round = task.round;
  out.kind = TaskKind::kEvaluate;
  out.model_digest = task.model_digest;
  out.num_samples = stats.samples;
  out.metrics["loss"] = stats.loss();
  out.metrics["accuracy"] = stats.accuracy();
  if (std::optional<double> auc = stats.auc()) out.metrics["auc"] = *auc;
  return out;
}

}  // namespace samverka::client
