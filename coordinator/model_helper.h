// coordinator/model_helper.h
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/parameters.h"

namespace samverka::coordinator {

// The coordinator never loads LibTorch (nor a TorchScript file, which is
// code) into its own process: it runs `samverka-torch model ...` as a
// short-lived child for the two things that need a model, and talks to it
// over pipes (SVTB parameters, JSON metrics). See docs/deployment.md.
struct ModelHelperOptions {
  // Path of the samverka-torch executable.
  std::string executable;
  // The model as in CoordinatorOptions.
  std::string model;
  std::vector<int64_t> input_shape;
  int64_t num_classes = 0;
  uint64_t seed = 0;
  // An evaluation still running after this is stopped (kDeadlineExceeded).
  absl::Duration evaluate_timeout = absl::InfiniteDuration();
};

// samverka-torch in the directory of the running executable.
std::string DefaultModelHelperPath();

// `samverka-torch model init`: the model's initial parameters (built-ins
// initialised from `seed`). kNotFound if the helper cannot be started;
// kInvalidArgument with the child's message if it cannot build the model
// (e.g. a file that is not TorchScript, or a shape the model cannot take).
absl::StatusOr<ModelParameters> BuildInitialModel(const ModelHelperOptions& options);

// Writes the SVTB-encoded parameters of `options`' model as a TorchScript
// file at `out_path` (`samverka-torch model save`). Errors as
// BuildInitialModel.
absl::Status SaveTorchScript(const ModelHelperOptions& options, const std::string& encoded_parameters,
                             const std::string& out_path);

// `samverka-torch model evaluate`: the model with `encoded_parameters`
// (SVTB) evaluated on the whole of `dataset_spec` (both parts of the
// loader's split). Returns test_loss, test_accuracy and, for binary tasks,
// test_auc. Errors as BuildInitialModel; kDeadlineExceeded after
// `evaluate_timeout`; kInternal for output that is not the expected JSON.
absl::StatusOr<std::map<std::string, double>> EvaluateModel(const ModelHelperOptions& options,
                                                            const std::string& dataset_spec,
                                                            const std::string& encoded_parameters);

}  // namespace samverka::coordinator
