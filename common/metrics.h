// common/metrics.h
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace samverka {

// Area under the ROC curve for binary labels (0/1) from scores, by the
// Mann-Whitney U statistic with ties counted half. nullopt when only one
// class is present.
std::optional<double> BinaryAuc(std::span<const float> scores,
                                std::span<const int64_t> labels);

// One value of a metrics row; monostate writes as JSON null / empty cell.
using MetricValue = std::variant<std::monostate, int64_t, double, std::string>;

// Writes per-round metrics as JSON lines and as CSV with the same columns,
// flushing after each row so a crashed run keeps every completed round.
// Not thread-safe.
class MetricsLog {
 public:
  // Creates (truncates) `jsonl_path` and `csv_path`, or with `append`
  // continues existing files (a restarted coordinator); kPermissionDenied
  // naming the path when a file cannot be opened.
  static absl::StatusOr<std::unique_ptr<MetricsLog>> Create(
      std::vector<std::string> columns, const std::string& jsonl_path,
      const std::string& csv_path, bool append = false);

  // `values` must have one entry per column, in column order.
  absl::Status Append(const std::vector<MetricValue>& values);
  const std::vector<std::string>& columns() const { return columns_; }

 private:
  MetricsLog(std::vector<std::string> columns) : columns_(std::move(columns)) {}
  std::vector<std::string> columns_;
  std::ofstream jsonl_;
  std::ofstream csv_;
};

}  // namespace samverka
