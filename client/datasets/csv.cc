// client/datasets/csv.cc
#include "client/datasets/csv.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "client/datasets/internal/csv_parser.h"
#include "client/datasets/internal/file_reader.h"
#include "common/random.h"
#include "common/status_macros.h"

namespace samverka::client {
namespace {

// Rows as read, before labels are turned into class ids.
struct RawTable {
  std::vector<std::string> header;
  size_t label_index = 0;
  std::vector<float> features;
  std::vector<std::string> labels;
  std::vector<int64_t> label_lines;
};

std::string CellPlace(absl::string_view path, int64_t line,
                      const RawTable& table, size_t column) {
  return absl::StrCat(path, ":", line, ": column ", column + 1, " ('",
                      table.header[column], "')");
}

absl::Status ParseHeader(absl::string_view path,
                         const std::vector<std::string>& fields,
                         const std::string& label_column, RawTable& table) {
  for (const std::string& name : fields) {
    table.header.emplace_back(absl::StripAsciiWhitespace(name));
  }
  const auto count =
      std::count(table.header.begin(), table.header.end(), label_column);
  if (count == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": no label column '", label_column,
        "'; the header has columns: ", absl::StrJoin(table.header, ", ")));
  }
  if (count > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": label column '", label_column, "' appears ",
                     count, " times in the header"));
  }
  if (table.header.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no feature columns besides the label"));
  }
  table.label_index = static_cast<size_t>(
      std::find(table.header.begin(), table.header.end(), label_column) -
      table.header.begin());
  return absl::OkStatus();
}

absl::StatusOr<float> ParseFeature(absl::string_view path, int64_t line,
                                   const RawTable& table, size_t column,
                                   absl::string_view cell) {
  cell = absl::StripAsciiWhitespace(cell);
  if (cell.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(CellPlace(path, line, table, column), ": empty cell"));
  }
  double value = 0;
  if (!absl::SimpleAtod(cell, &value) || !std::isfinite(value) ||
      !std::isfinite(static_cast<float>(value))) {
    return absl::InvalidArgumentError(
        absl::StrCat(CellPlace(path, line, table, column), ": '", cell,
                     "' is not a finite number"));
  }
  return static_cast<float>(value);
}

absl::Status AddRow(absl::string_view path, int64_t line,
                    const std::vector<std::string>& fields, RawTable& table) {
  if (fields.size() != table.header.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", line, ": expected ", table.header.size(),
                     " fields as in the header, got ", fields.size()));
  }
  for (size_t column = 0; column < fields.size(); ++column) {
    if (column == table.label_index) continue;
    SV_ASSIGN_OR_RETURN(
        const float value,
        ParseFeature(path, line, table, column, fields[column]));
    table.features.push_back(value);
  }
  std::string label(absl::StripAsciiWhitespace(fields[table.label_index]));
  if (label.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        CellPlace(path, line, table, table.label_index), ": empty label"));
  }
  table.labels.push_back(std::move(label));
  table.label_lines.push_back(line);
  return absl::OkStatus();
}

bool AllIntegers(const std::vector<std::string>& labels) {
  int64_t ignored = 0;
  return std::all_of(labels.begin(), labels.end(), [&](const std::string& s) {
    return absl::SimpleAtoi(s, &ignored);
  });
}

absl::Status IntegerLabels(absl::string_view path, const RawTable& table,
                           Dataset& dataset) {
  int64_t max_id = 0;
  for (size_t i = 0; i < table.labels.size(); ++i) {
    int64_t id = 0;
    (void)absl::SimpleAtoi(table.labels[i], &id);
    if (id < 0 || id > kMaxCsvClassId) {
      return absl::InvalidArgumentError(absl::StrCat(
          CellPlace(path, table.label_lines[i], table, table.label_index),
          ": class id ", id, " is outside [0, ", kMaxCsvClassId, "]"));
    }
    max_id = std::max(max_id, id);
    dataset.labels.push_back(id);
  }
  dataset.num_classes = max_id + 1;
  return absl::OkStatus();
}

void StringLabels(const RawTable& table, Dataset& dataset) {
  std::map<std::string, int64_t> ids;
  for (const std::string& label : table.labels) ids.emplace(label, 0);
  for (auto& [name, id] : ids) {
    id = static_cast<int64_t>(dataset.class_names.size());
    dataset.class_names.push_back(name);
  }
  for (const std::string& label : table.labels) {
    dataset.labels.push_back(ids[label]);
  }
  dataset.num_classes = static_cast<int64_t>(ids.size());
}

absl::StatusOr<Dataset> ToDataset(absl::string_view path, RawTable table) {
  Dataset dataset;
  if (AllIntegers(table.labels)) {
    SV_RETURN_IF_ERROR(IntegerLabels(path, table, dataset));
  } else {
    StringLabels(table, dataset);
  }
  for (size_t column = 0; column < table.header.size(); ++column) {
    if (column != table.label_index) {
      dataset.feature_names.push_back(table.header[column]);
    }
  }
  dataset.sample_shape = {static_cast<int64_t>(dataset.feature_names.size())};
  dataset.features = std::move(table.features);
  return dataset;
}

// Copies the samples at `indices` (and all metadata) out of `source`.
Dataset Subset(const Dataset& source, const std::vector<size_t>& indices) {
  Dataset out;
  out.sample_shape = source.sample_shape;
  out.num_classes = source.num_classes;
  out.class_names = source.class_names;
  out.feature_names = source.feature_names;
  const auto size = static_cast<size_t>(source.sample_size());
  out.features.reserve(indices.size() * size);
  for (size_t i : indices) {
    const auto begin = source.features.begin() + i * size;
    out.features.insert(out.features.end(), begin, begin + size);
    out.labels.push_back(source.labels[i]);
  }
  return out;
}

// Per-feature mean and population standard deviation of a data set.
struct FeatureStats {
  std::vector<double> mean;
  std::vector<double> stddev;
};

FeatureStats ComputeStats(const Dataset& dataset) {
  const auto size = static_cast<size_t>(dataset.sample_size());
  const auto rows = static_cast<size_t>(dataset.num_samples());
  const std::vector<float>& x = dataset.features;
  FeatureStats stats{std::vector<double>(size, 0.0),
                     std::vector<double>(size, 0.0)};
  // A constant feature is detected exactly, not through a rounded variance.
  std::vector<bool> constant(size, true);
  for (size_t i = 0; i < x.size(); ++i) {
    stats.mean[i % size] += x[i];
    if (x[i] != x[i % size]) constant[i % size] = false;
  }
  for (double& m : stats.mean) m /= static_cast<double>(rows);
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = x[i] - stats.mean[i % size];
    stats.stddev[i % size] += d * d;
  }
  for (size_t f = 0; f < size; ++f) {
    stats.stddev[f] =
        constant[f] ? 0.0
                    : std::sqrt(stats.stddev[f] / static_cast<double>(rows));
  }
  return stats;
}

// x -> (x - mean) / stddev per feature; only centred where stddev is 0.
void Standardize(const FeatureStats& stats, Dataset& dataset) {
  const size_t size = stats.mean.size();
  for (size_t i = 0; i < dataset.features.size(); ++i) {
    const size_t f = i % size;
    const double centred = dataset.features[i] - stats.mean[f];
    dataset.features[i] = static_cast<float>(
        stats.stddev[f] > 0 ? centred / stats.stddev[f] : centred);
  }
}

absl::Status CheckTestFraction(double test_fraction) {
  if (test_fraction >= 0.0 && test_fraction < 1.0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("test_fraction must be in [0, 1), got ", test_fraction));
}

}  // namespace

absl::Status CsvOptions::Validate() const {
  if (path.empty()) return absl::InvalidArgumentError("CSV path is empty");
  if (label_column.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": CSV label column name is empty"));
  }
  return CheckTestFraction(test_fraction);
}

absl::StatusOr<Dataset> ReadCsvDataset(const std::string& path,
                                       const std::string& label_column) {
  SV_ASSIGN_OR_RETURN(const std::string text,
                      internal::ReadFileMaybeGzip(path));
  RawTable table;
  bool have_header = false;
  SV_RETURN_IF_ERROR(internal::ForEachCsvRecord(
      text, path, [&](int64_t line, const std::vector<std::string>& fields) {
        if (have_header) return AddRow(path, line, fields, table);
        have_header = true;
        return ParseHeader(path, fields, label_column, table);
      }));
  if (!have_header) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": empty file, expected a header row"));
  }
  if (table.labels.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no data rows after the header"));
  }
  return ToDataset(path, std::move(table));
}

absl::StatusOr<DatasetSplit> SplitAndStandardize(const Dataset& dataset,
                                                 double test_fraction,
                                                 uint64_t seed) {
  SV_RETURN_IF_ERROR(CheckTestFraction(test_fraction));
  const auto n = static_cast<size_t>(dataset.num_samples());
  const auto num_test =
      static_cast<size_t>(std::llround(static_cast<double>(n) * test_fraction));
  if (num_test >= n) {
    return absl::InvalidArgumentError(
        absl::StrCat("test_fraction ", test_fraction, " of ", n,
                     " samples leaves no samples for training"));
  }
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  Shuffle(order, rng);
  const auto middle = order.begin() + static_cast<std::ptrdiff_t>(num_test);
  DatasetSplit split;
  split.test = Subset(dataset, std::vector<size_t>(order.begin(), middle));
  split.train = Subset(dataset, std::vector<size_t>(middle, order.end()));
  const FeatureStats train_stats = ComputeStats(split.train);
  Standardize(train_stats, split.train);
  Standardize(train_stats, split.test);
  return split;
}

absl::StatusOr<DatasetSplit> LoadCsvDataset(const CsvOptions& options) {
  SV_RETURN_IF_ERROR(options.Validate());
  SV_ASSIGN_OR_RETURN(const Dataset dataset,
                      ReadCsvDataset(options.path, options.label_column));
  return SplitAndStandardize(dataset, options.test_fraction, options.seed);
}

}  // namespace samverka::client
