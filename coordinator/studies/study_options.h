// coordinator/studies/study_options.h
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/study_manifest.h"
#include "coordinator/coordinator.h"
#include "statistics/spec.h"

namespace samverka::coordinator {

// Reads `key` (seconds, > 0) into `out`, leaving it if the key is absent.
absl::Status ReadPositiveSeconds(ConfigFile& file, const char* key, absl::Duration* out);

// Reads what a study says about training (model, input shape, classes,
// rounds, cohort, deadlines, training options, strategy, secure
// aggregation and DP, test set) from `file` into `options`, checking each
// value; relative paths (test_dataset) are resolved against `base_path`.
// The one reader of these keys, for study.toml and for the study keys a
// single-run coordinator.toml still carries. kInvalidArgument naming the
// key and the file.
absl::Status ApplyStudyKeys(ConfigFile& file, const std::string& base_path,
                            CoordinatorOptions* options);

// A study as the coordinator runs it: the signed manifest's text read with
// strict keys (an unknown key is an error) on top of the federation's
// options (`federation`: id, state dir, heartbeat, CA, limits), and checked
// as a whole (a robust strategy with secure aggregation, DP without it).
// If `known_datasets` is not empty, the manifest's data set must be one of
// them (the names the federation's sites registered; the message lists
// them). `model_file`: where the TorchScript file submitted with the study
// is kept, if the manifest names one (empty otherwise). kInvalidArgument naming `source_name` and what is wrong.
// A statistics study (kind = "statistics") also has its [statistics]
// table read (statistics/spec.h), and no model.
struct Study {
  StudyManifest manifest;
  CoordinatorOptions options;
  std::optional<statistics::StatisticsSpec> statistics;
};
absl::StatusOr<Study> ReadStudy(std::string_view manifest_text, const std::string& source_name,
                                const CoordinatorOptions& federation,
                                const std::set<std::string>& known_datasets,
                                const std::string& model_file = "");

}  // namespace samverka::coordinator
