// client/datasets/model_fit.cc
#include "client/datasets/model_fit.h"

#include <algorithm>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace samverka::client {
namespace {

absl::Status Refuse(std::string site_message, std::string reason, std::string* coordinator_reason) {
  if (coordinator_reason != nullptr) *coordinator_reason = std::move(reason);
  return absl::FailedPreconditionError(std::move(site_message));
}

int64_t MaxLabel(const DatasetSplit& data) {
  int64_t max_label = -1;
  for (const Dataset* part : {&data.train, &data.test}) {
    for (int64_t label : part->labels) max_label = std::max(max_label, label);
  }
  return max_label;
}

// New class id of each of the data's class ids, or an error naming the first
// label the model does not know.
absl::StatusOr<std::vector<int64_t>> MapLabelNames(const FederationModel& model,
                                                   const std::string& source,
                                                   const Dataset& data,
                                                   std::string* coordinator_reason) {
  std::vector<int64_t> ids;
  if (model.class_labels.empty()) {
    if (static_cast<int64_t>(data.class_names.size()) != model.num_classes) {
      return Refuse(
          absl::StrCat(source, " has ", data.class_names.size(), " label names (",
                       absl::StrJoin(data.class_names, ", "), ") and the federation's model has ",
                       model.num_classes, " classes: without class_labels at the coordinator this "
                       "site cannot tell which class each name is; set class_labels in "
                       "coordinator.toml, or use class ids 0 to ", model.num_classes - 1,
                       " in the label column"),
          absl::StrCat("its labels are names, ", data.class_names.size(), " of the model's ",
                       model.num_classes, " classes, and the coordinator sets no class_labels to "
                       "map them (set class_labels in coordinator.toml)"),
          coordinator_reason);
    }
    for (size_t i = 0; i < data.class_names.size(); ++i) ids.push_back(static_cast<int64_t>(i));
    return ids;
  }
  for (const std::string& name : data.class_names) {
    auto it = std::find(model.class_labels.begin(), model.class_labels.end(), name);
    if (it == model.class_labels.end()) {
      return Refuse(absl::StrCat(source, ": label '", name,
                                 "' is not one of the federation's class_labels (",
                                 absl::StrJoin(model.class_labels, ", "), ")"),
                    "a label in its data is not one of the federation's class_labels",
                    coordinator_reason);
    }
    ids.push_back(it - model.class_labels.begin());
  }
  return ids;
}

}  // namespace

absl::Status FitDatasetToModel(const FederationModel& model, const std::string& source,
                               DatasetSplit* data, std::string* coordinator_reason) {
  const int64_t features = data->train.sample_size();
  const int64_t expected = ShapeElements(model.input_shape);
  if (features != expected) {
    return Refuse(
        absl::StrCat(source, " has ", features, " features per sample (shape ",
                     ShapeString(data->train.sample_shape), "), but the federation's model '",
                     model.model, "' takes input_shape ", ShapeString(model.input_shape), " (",
                     expected, " values); in a CSV every column but the label column is a "
                     "feature: check the file's columns, or the coordinator's input_shape"),
        absl::StrCat("its data has ", features, " features per sample (shape ",
                     ShapeString(data->train.sample_shape), "), but the federation's model '",
                     model.model, "' takes input_shape ", ShapeString(model.input_shape), " (",
                     expected, " values)"),
        coordinator_reason);
  }
  if (model.num_classes < 2) {
    return Refuse(absl::StrCat("the coordinator states num_classes = ", model.num_classes),
                  "num_classes < 2", coordinator_reason);
  }
  std::vector<int64_t> ids;
  if (!data->train.class_names.empty()) {
    absl::StatusOr<std::vector<int64_t>> mapped =
        MapLabelNames(model, source, data->train, coordinator_reason);
    if (!mapped.ok()) return mapped.status();
    ids = std::move(*mapped);
  } else if (const int64_t max_label = MaxLabel(*data); max_label >= model.num_classes) {
    return Refuse(
        absl::StrCat(source, ": label ", max_label, " is not a class of the federation's model, "
                     "which has num_classes = ", model.num_classes, " (class ids 0 to ",
                     model.num_classes - 1, ")"),
        absl::StrCat("its labels are outside the model's num_classes = ", model.num_classes),
        coordinator_reason);
  }
  for (Dataset* part : {&data->train, &data->test}) {
    part->sample_shape = model.input_shape;
    part->num_classes = model.num_classes;
    if (!ids.empty()) {
      for (int64_t& label : part->labels) label = ids[static_cast<size_t>(label)];
    }
    if (!model.class_labels.empty()) part->class_names = model.class_labels;
  }
  return absl::OkStatus();
}

}  // namespace samverka::client
