// client/datasets/csv.h
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include <vector>

#include "common/dataset.h"
#include "models/tasks/task_type.h"

namespace samverka::client {

// Largest integer class id accepted in a CSV label column.
inline constexpr int64_t kMaxCsvClassId = 65535;

// What to load from a CSV file with a header row, and how to split it.
struct CsvOptions {
  // The file (plain, or gzip detected by its magic bytes).
  std::string path;
  // Header name of the label column; every other column is a feature.
  std::string label_column;
  // Share of rows (rounded to nearest) that go to the test split, in [0, 1).
  double test_fraction = 0.2;
  // Seeds the shuffle that decides the split.
  uint64_t seed = 0;
  // What the target columns hold (models/tasks/task_type.h).
  models::TaskType task = models::TaskType::kClassification;
  // Tasks other than classification: the target columns by name, replacing
  // label_column: one or more for regression and multilabel, exactly time
  // then event for survival. Every other column is a feature.
  std::vector<std::string> target_columns{};

  // target_columns, or {label_column} when it is empty.
  std::vector<std::string> columns() const;

  // kInvalidArgument for an empty path or column name, a column count the
  // task does not take, or a test_fraction outside [0, 1).
  absl::Status Validate() const;
};

// Reads a classification table: a header row, then one sample per row.
// Labels that are all integers are class ids (>= 0, at most kMaxCsvClassId;
// num_classes = max + 1, class_names empty); otherwise the distinct strings,
// sorted, become ids 0..k-1 and are recorded in class_names. Every other
// column must hold finite numbers; cells are trimmed of ASCII whitespace.
// Features are returned as read (no scaling), feature_names from the header,
// sample_shape {num_features}.
// kNotFound (no file), kInvalidArgument naming the file and, for a bad cell,
// the line and column: missing label column (lists the columns), empty or
// non-numeric cell, wrong field count, no data rows, malformed quoting.
absl::StatusOr<Dataset> ReadCsvDataset(const std::string& path,
                                       const std::string& label_column);

// Reads a table for `task`. Classification: one label column, as above.
// Otherwise `columns` name the target columns (in the order they become
// target values; survival: time then event), every other column is a
// feature, and the data set gets target_shape {columns.size()},
// target_names, and labels (survival: the event; otherwise 0). Target cells
// must be finite numbers; survival times >= 0 and events 0 or 1; multilabel
// targets 0 or 1. Errors as above, naming the file, line and column of a bad
// cell, and kInvalidArgument for a column count the task does not take.
absl::StatusOr<Dataset> ReadCsvDataset(const std::string& path,
                                       const std::vector<std::string>& columns,
                                       models::TaskType task);

// Shuffles the rows (Fisher-Yates driven by std::mt19937_64(seed), identical
// across standard libraries), puts round(n * test_fraction) rows in `test`
// and the rest in `train`, then standardises every feature of both splits
// with the mean and population standard deviation of `train` only (a
// feature with standard deviation 0 is only centred). With
// `standardize_targets` (regression), the targets too, recording the
// training split's mean and deviation in target_mean and target_scale.
// Without `standardize_features` the features are kept as they are.
// kInvalidArgument if test_fraction is outside [0, 1) or the training split
// would be empty.
absl::StatusOr<DatasetSplit> SplitAndStandardize(const Dataset& dataset,
                                                 double test_fraction,
                                                 uint64_t seed,
                                                 bool standardize_targets = false,
                                                 bool standardize_features = true);

// ReadCsvDataset followed by SplitAndStandardize. Errors as those two and
// as CsvOptions::Validate.
absl::StatusOr<DatasetSplit> LoadCsvDataset(const CsvOptions& options);

}  // namespace samverka::client
