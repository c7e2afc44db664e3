#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace samverka {

std::optional<double> BinaryAuc(std::span<const float> scores,
                                std::span<const int64_t> labels) {
  const size_t n = std::min(scores.size(), labels.size());
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Sum of the (1-based, tie-averaged) ranks of the positive samples.
  double positive_rank_sum = 0;
  int64_t positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    const double average_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t k = i; k < j; ++k) {
      if (labels[order[k]] == 1) {
        positive_rank_sum += average_rank;
        ++positives;
      }
    }
    i = j;
  }
  const int64_t negatives = static_cast<int64_t>(n) - positives;
  if (positives == 0 || negatives == 0) return std::nullopt;
  const double u = positive_rank_sum - static_cast<double>(positives) * (positives + 1) / 2;
  return u / (static_cast<double>(positives) * static_cast<double>(negatives));
}

absl::StatusOr<std::unique_ptr<MetricsLog>> MetricsLog::Create(
    std::vector<std::string> columns, const std::string& jsonl_path,
    const std::string& csv_path, bool append) {
  std::unique_ptr<MetricsLog> log(new MetricsLog(std::move(columns)));
  const bool header = !append || !std::filesystem::exists(csv_path) ||
                      std::filesystem::file_size(csv_path) == 0;
  const auto mode = append ? std::ios::app : std::ios::trunc;
  log->jsonl_.open(jsonl_path, mode);
  if (!log->jsonl_) return absl::PermissionDeniedError(absl::StrCat("cannot write ", jsonl_path));
  log->csv_.open(csv_path, mode);
  if (!log->csv_) return absl::PermissionDeniedError(absl::StrCat("cannot write ", csv_path));
  if (!header) return log;
  for (size_t i = 0; i < log->columns_.size(); ++i) {
    log->csv_ << (i ? "," : "") << log->columns_[i];
  }
  log->csv_ << "\n" << std::flush;
  return log;
}

absl::Status MetricsLog::Append(const std::vector<MetricValue>& values) {
  if (values.size() != columns_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("metrics row has ", values.size(),
                                                   " values for ", columns_.size(), " columns"));
  }
  nlohmann::ordered_json row = nlohmann::ordered_json::object();
  for (size_t i = 0; i < values.size(); ++i) {
    const MetricValue& v = values[i];
    if (i) csv_ << ",";
    if (const auto* x = std::get_if<int64_t>(&v)) {
      row[columns_[i]] = *x;
      csv_ << *x;
    } else if (const auto* d = std::get_if<double>(&v)) {
      if (std::isfinite(*d)) {
        row[columns_[i]] = *d;
        csv_ << nlohmann::json(*d).dump();
      } else {
        row[columns_[i]] = nullptr;
      }
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      row[columns_[i]] = *s;
      csv_ << nlohmann::json(*s).dump();
    } else {
      row[columns_[i]] = nullptr;
    }
  }
  jsonl_ << row.dump() << "\n" << std::flush;
  csv_ << "\n" << std::flush;
  if (!jsonl_ || !csv_) return absl::DataLossError("failed to write a metrics row");
  return absl::OkStatus();
}

}  // namespace samverka
