// client/datasets/model_fit.h
#pragma once

#include <string>

#include "absl/status/status.h"
#include "common/dataset.h"
#include "common/task.h"

namespace samverka::client {

// Makes a site's loaded data fit the federation's model, whose input shape,
// number of classes and label set come from the coordinator's config, never
// from this one site's data (a site holding one class only trains the same
// model as the others):
//   - every sample must have as many values as model.input_shape; the
//     samples are then viewed with that shape (e.g. 784 CSV columns as
//     [1, 28, 28]);
//   - integer labels are class ids and must be in [0, num_classes);
//   - label names map through model.class_labels; without class_labels a
//     site must hold exactly num_classes names (taken in sorted order).
// Both splits get num_classes (and class_labels as class_names). Idempotent.
// kFailedPrecondition when the data cannot serve the model: the message
// names `source` (the file), what it holds and what the model expects; the
// site logs it. `coordinator_reason` gets what the coordinator may be told:
// the same without file or label names. `data` is unchanged on error.
absl::Status FitDatasetToModel(const FederationModel& model, const std::string& source,
                               DatasetSplit* data, std::string* coordinator_reason);

}  // namespace samverka::client
