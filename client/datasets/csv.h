// client/datasets/csv.h
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/dataset.h"

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

  // kInvalidArgument for an empty path or label column, or a test_fraction
  // outside [0, 1).
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

// Shuffles the rows (Fisher-Yates driven by std::mt19937_64(seed), identical
// across standard libraries), puts round(n * test_fraction) rows in `test`
// and the rest in `train`, then standardises every feature of both splits
// with the mean and population standard deviation of `train` only (a
// feature with standard deviation 0 is only centred). kInvalidArgument if
// test_fraction is outside [0, 1) or the training split would be empty.
absl::StatusOr<DatasetSplit> SplitAndStandardize(const Dataset& dataset,
                                                 double test_fraction,
                                                 uint64_t seed);

// ReadCsvDataset followed by SplitAndStandardize. Errors as those two and
// as CsvOptions::Validate.
absl::StatusOr<DatasetSplit> LoadCsvDataset(const CsvOptions& options);

}  // namespace samverka::client
