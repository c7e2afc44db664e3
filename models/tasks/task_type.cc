#include "models/tasks/task_type.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/task.h"

namespace samverka::models {

const char* TaskTypeName(TaskType type) {
  switch (type) {
    case TaskType::kClassification: return "classification";
    case TaskType::kRegression: return "regression";
    case TaskType::kSurvival: return "survival";
    case TaskType::kMultilabel: return "multilabel";
  }
  return "?";
}

std::vector<std::string> TaskTypeNames() {
  return {"classification", "regression", "survival", "multilabel"};
}

absl::StatusOr<TaskType> ParseTaskType(std::string_view name) {
  for (TaskType type : {TaskType::kClassification, TaskType::kRegression, TaskType::kSurvival,
                        TaskType::kMultilabel}) {
    if (name == TaskTypeName(type)) return type;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown task '", std::string(name),
                                                 "'; valid tasks: ",
                                                 absl::StrJoin(TaskTypeNames(), ", ")));
}

absl::Status TaskOptions::Validate() const {
  if (!class_weights.empty() && type != TaskType::kClassification) {
    return absl::InvalidArgumentError(absl::StrCat(
        "class_weights are for task classification, not ", TaskTypeName(type)));
  }
  for (size_t i = 0; i < class_weights.size(); ++i) {
    if (!(class_weights[i] > 0) || !std::isfinite(class_weights[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "class_weights[", i, "] = ", class_weights[i], ": every weight must be a number > 0"));
    }
  }
  if (!(huber_delta >= 0) || !std::isfinite(huber_delta)) {
    return absl::InvalidArgumentError(
        absl::StrCat("huber_delta = ", huber_delta, ": must be >= 0 (0: mean squared error)"));
  }
  if (huber_delta > 0 && type != TaskType::kRegression) {
    return absl::InvalidArgumentError(
        absl::StrCat("huber_delta is for task regression, not ", TaskTypeName(type)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> OutputWidth(const TaskOptions& task, const Dataset& data) {
  const std::string held =
      data.target_shape.empty()
          ? absl::StrCat("class labels (", data.num_classes, " classes)")
          : absl::StrCat("targets shaped ", ShapeString(data.target_shape));
  auto unfit = [&](std::string_view needs) {
    return absl::InvalidArgumentError(absl::StrCat("task ", TaskTypeName(task.type), " needs ",
                                                   std::string(needs), "; the data holds ",
                                                   held));
  };
  switch (task.type) {
    case TaskType::kClassification:
      if (!data.target_shape.empty() || data.num_classes < 2) {
        return unfit("integer class labels of at least 2 classes");
      }
      if (!task.class_weights.empty() &&
          static_cast<int64_t>(task.class_weights.size()) != data.num_classes) {
        return absl::InvalidArgumentError(
            absl::StrCat(task.class_weights.size(), " class_weights for ", data.num_classes,
                         " classes; give one weight per class"));
      }
      return data.num_classes;
    case TaskType::kRegression:
      if (data.target_shape.size() != 1) return unfit("numeric targets shaped [T]");
      return data.target_shape[0];
    case TaskType::kSurvival:
      if (data.target_shape != std::vector<int64_t>{2}) {
        return unfit("a time and an event per sample (targets shaped [2])");
      }
      return 1;
    case TaskType::kMultilabel:
      if (data.target_shape.size() != 1) return unfit("0/1 targets shaped [L]");
      return data.target_shape[0];
  }
  return absl::InternalError("unknown task");
}

}  // namespace samverka::models
