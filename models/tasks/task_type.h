// models/tasks/task_type.h
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/dataset.h"

namespace samverka::models {

// What a model learns and how it is judged (docs/tasks.md).
//   kClassification  one integer label per sample; cross-entropy (optional
//                    class weights); output [N, classes] logits.
//   kRegression      targets [N, T] of real numbers; MSE or Huber on targets
//                    standardised with the training split's mean and
//                    deviation; output [N, T] in standardised units.
//   kSurvival        targets [N, 2] = (time >= 0, event 0/1); negative Cox
//                    partial likelihood with Breslow's ties; output [N, 1],
//                    the log risk.
//   kMultilabel      targets [N, L] of 0/1; binary cross-entropy with logits
//                    per label; output [N, L] logits.
enum class TaskType { kClassification, kRegression, kSurvival, kMultilabel };

// "classification", "regression", "survival", "multilabel".
const char* TaskTypeName(TaskType type);
std::vector<std::string> TaskTypeNames();
// kInvalidArgument listing the valid names for anything else.
absl::StatusOr<TaskType> ParseTaskType(std::string_view name);

// The task and its loss settings. Plain value; thread-compatible.
struct TaskOptions {
  TaskType type = TaskType::kClassification;
  // Classification only: one weight > 0 per class for the training loss
  // (cross-entropy's `weight`); empty: all 1. Evaluation loss is unweighted.
  std::vector<double> class_weights{};
  // Regression only: 0 for MSE; > 0 for the Huber loss with this delta, in
  // standard deviations of the target (targets are standardised).
  double huber_delta = 0;

  // kInvalidArgument naming the bad field (a weight <= 0 or not finite, a
  // negative huber_delta, settings of another task).
  absl::Status Validate() const;
};

// Width of the model's output for `task` on data shaped like `data`:
// classes, regression targets, 1 for survival, labels for multilabel.
// kInvalidArgument when `data` has no targets the task can learn (e.g. a
// regression on a data set without numeric targets, or class weights that do
// not match the number of classes), saying what the data holds.
absl::StatusOr<int64_t> OutputWidth(const TaskOptions& task, const Dataset& data);

}  // namespace samverka::models
