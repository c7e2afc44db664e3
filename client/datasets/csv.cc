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
  // Tasks other than classification: the target columns, in the order
  // asked for, and what their cells must hold.
  models::TaskType task = models::TaskType::kClassification;
  std::vector<size_t> target_indices;
  std::vector<float> features;
  std::vector<std::string> labels;
  std::vector<int64_t> label_lines;
  std::vector<float> targets;
  int64_t rows = 0;

  bool IsTarget(size_t column) const {
    return task == models::TaskType::kClassification
               ? column == label_index
               : std::find(target_indices.begin(), target_indices.end(), column) !=
                     target_indices.end();
  }
};

std::string CellPlace(absl::string_view path, int64_t line,
                      const RawTable& table, size_t column) {
  return absl::StrCat(path, ":", line, ": column ", column + 1, " ('",
                      table.header[column], "')");
}

absl::Status ParseTargetHeader(absl::string_view path,
                               const std::vector<std::string>& target_columns,
                               RawTable& table) {
  for (const std::string& column : target_columns) {
    const auto count = std::count(table.header.begin(), table.header.end(), column);
    if (count == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": no target column '", column,
          "'; the header has columns: ", absl::StrJoin(table.header, ", ")));
    }
    if (count > 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": target column '", column, "' appears ", count, " times in the header"));
    }
    const size_t index = static_cast<size_t>(
        std::find(table.header.begin(), table.header.end(), column) - table.header.begin());
    if (table.IsTarget(index)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": target column '", column, "' is named twice"));
    }
    table.target_indices.push_back(index);
  }
  if (table.header.size() <= table.target_indices.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no feature columns besides the targets"));
  }
  return absl::OkStatus();
}

absl::Status ParseHeader(absl::string_view path,
                         const std::vector<std::string>& fields,
                         const std::vector<std::string>& target_columns,
                         RawTable& table) {
  for (const std::string& name : fields) {
    table.header.emplace_back(absl::StripAsciiWhitespace(name));
  }
  if (table.task != models::TaskType::kClassification) {
    return ParseTargetHeader(path, target_columns, table);
  }
  const std::string& label_column = target_columns.front();
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

// Parses the target cells of one row: finite numbers; survival's time >= 0
// and event 0 or 1; multi-label 0 or 1.
absl::Status AddTargets(absl::string_view path, int64_t line,
                        const std::vector<std::string>& fields, RawTable& table) {
  for (size_t k = 0; k < table.target_indices.size(); ++k) {
    const size_t column = table.target_indices[k];
    const absl::string_view cell = absl::StripAsciiWhitespace(fields[column]);
    SV_ASSIGN_OR_RETURN(const float value, ParseFeature(path, line, table, column, cell));
    const bool survival = table.task == models::TaskType::kSurvival;
    if (survival && k == 0 && value < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(CellPlace(path, line, table, column), ": survival time '", cell,
                       "' is negative"));
    }
    const bool binary = (survival && k == 1) || table.task == models::TaskType::kMultilabel;
    if (binary && value != 0 && value != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          CellPlace(path, line, table, column), ": '", cell, "' is not 0 or 1 (",
          survival ? "the event: 1 if it happened, 0 if censored" : "a label", ")"));
    }
    table.targets.push_back(value);
  }
  return absl::OkStatus();
}

absl::Status AddRow(absl::string_view path, int64_t line,
                    const std::vector<std::string>& fields, RawTable& table) {
  if (fields.size() != table.header.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", line, ": expected ", table.header.size(),
                     " fields as in the header, got ", fields.size()));
  }
  ++table.rows;
  if (table.task != models::TaskType::kClassification) {
    for (size_t column = 0; column < fields.size(); ++column) {
      if (table.IsTarget(column)) continue;
      SV_ASSIGN_OR_RETURN(const float value,
                          ParseFeature(path, line, table, column, fields[column]));
      table.features.push_back(value);
    }
    return AddTargets(path, line, fields, table);
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

// A data set of float targets: survival's labels are its events (so a
// partition can stratify by them), others' are 0.
Dataset ToTargetDataset(RawTable table) {
  Dataset dataset;
  const auto width = static_cast<int64_t>(table.target_indices.size());
  dataset.target_shape = {width};
  for (size_t column : table.target_indices) dataset.target_names.push_back(table.header[column]);
  const bool survival = table.task == models::TaskType::kSurvival;
  dataset.num_classes = survival ? 2 : 1;
  for (int64_t i = 0; i < table.rows; ++i) {
    dataset.labels.push_back(survival ? static_cast<int64_t>(table.targets[i * width + 1]) : 0);
  }
  for (size_t column = 0; column < table.header.size(); ++column) {
    if (!table.IsTarget(column)) dataset.feature_names.push_back(table.header[column]);
  }
  dataset.sample_shape = {static_cast<int64_t>(dataset.feature_names.size())};
  dataset.features = std::move(table.features);
  dataset.targets = std::move(table.targets);
  return dataset;
}

absl::StatusOr<Dataset> ToDataset(absl::string_view path, RawTable table) {
  if (table.task != models::TaskType::kClassification) return ToTargetDataset(std::move(table));
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
  out.target_shape = source.target_shape;
  out.target_names = source.target_names;
  out.target_mean = source.target_mean;
  out.target_scale = source.target_scale;
  const auto size = static_cast<size_t>(source.sample_size());
  const auto target_size = static_cast<size_t>(source.target_size());
  out.features.reserve(indices.size() * size);
  for (size_t i : indices) {
    const auto begin = source.features.begin() + i * size;
    out.features.insert(out.features.end(), begin, begin + size);
    out.labels.push_back(source.labels[i]);
    const auto target = source.targets.begin() + i * target_size;
    out.targets.insert(out.targets.end(), target, target + target_size);
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

// Regression targets: t -> (t - mean) / stddev with the training split's
// statistics (a constant target is only centred, scale 1), recorded in the
// data set so metrics are reported in the targets' own units.
void StandardizeTargets(DatasetSplit& split) {
  const auto width = static_cast<size_t>(split.train.target_size());
  const auto rows = static_cast<size_t>(split.train.num_samples());
  std::vector<double> mean(width, 0), scale(width, 0);
  for (size_t i = 0; i < rows * width; ++i) mean[i % width] += split.train.targets[i];
  for (double& m : mean) m /= static_cast<double>(rows);
  for (size_t i = 0; i < rows * width; ++i) {
    const double d = split.train.targets[i] - mean[i % width];
    scale[i % width] += d * d;
  }
  for (double& s : scale) {
    s = std::sqrt(s / static_cast<double>(rows));
    if (!(s > 0)) s = 1;
  }
  for (Dataset* part : {&split.train, &split.test}) {
    for (size_t i = 0; i < part->targets.size(); ++i) {
      part->targets[i] =
          static_cast<float>((part->targets[i] - mean[i % width]) / scale[i % width]);
    }
    part->target_mean = mean;
    part->target_scale = scale;
  }
}

absl::Status CheckTestFraction(double test_fraction) {
  if (test_fraction >= 0.0 && test_fraction < 1.0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("test_fraction must be in [0, 1), got ", test_fraction));
}


absl::Status CheckTargetColumns(absl::string_view path, const std::vector<std::string>& columns,
                                models::TaskType task) {
  for (const std::string& column : columns) {
    if (column.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": CSV label or target column name is empty"));
    }
  }
  const size_t n = columns.size();
  const bool fits = task == models::TaskType::kSurvival         ? n == 2
                    : task == models::TaskType::kClassification ? n == 1
                                                                : n >= 1;
  if (fits) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      path, ": task ", models::TaskTypeName(task), " takes ",
      task == models::TaskType::kSurvival         ? "two columns, time then event"
      : task == models::TaskType::kClassification ? "one label column"
                                                  : "one or more target columns",
      "; got ", n, " (", absl::StrJoin(columns, ","), ")"));
}

}  // namespace

std::vector<std::string> CsvOptions::columns() const {
  return target_columns.empty() ? std::vector<std::string>{label_column} : target_columns;
}

absl::Status CsvOptions::Validate() const {
  if (path.empty()) return absl::InvalidArgumentError("CSV path is empty");
  SV_RETURN_IF_ERROR(CheckTargetColumns(path, columns(), task));
  return CheckTestFraction(test_fraction);
}

absl::StatusOr<Dataset> ReadCsvDataset(const std::string& path,
                                       const std::string& label_column) {
  return ReadCsvDataset(path, {label_column}, models::TaskType::kClassification);
}

absl::StatusOr<Dataset> ReadCsvDataset(const std::string& path,
                                       const std::vector<std::string>& columns,
                                       models::TaskType task) {
  SV_RETURN_IF_ERROR(CheckTargetColumns(path, columns, task));
  SV_ASSIGN_OR_RETURN(const std::string text,
                      internal::ReadFileMaybeGzip(path));
  RawTable table;
  table.task = task;
  bool have_header = false;
  SV_RETURN_IF_ERROR(internal::ForEachCsvRecord(
      text, path, [&](int64_t line, const std::vector<std::string>& fields) {
        if (have_header) return AddRow(path, line, fields, table);
        have_header = true;
        return ParseHeader(path, fields, columns, table);
      }));
  if (!have_header) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": empty file, expected a header row"));
  }
  if (table.rows == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no data rows after the header"));
  }
  return ToDataset(path, std::move(table));
}

absl::StatusOr<DatasetSplit> SplitAndStandardize(const Dataset& dataset,
                                                 double test_fraction,
                                                 uint64_t seed, bool standardize_targets,
                                                 bool standardize_features) {
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
  if (standardize_features) {
    const FeatureStats train_stats = ComputeStats(split.train);
    Standardize(train_stats, split.train);
    Standardize(train_stats, split.test);
  }
  if (standardize_targets && split.train.target_size() > 0) StandardizeTargets(split);
  return split;
}

absl::StatusOr<DatasetSplit> LoadCsvDataset(const CsvOptions& options) {
  SV_RETURN_IF_ERROR(options.Validate());
  SV_ASSIGN_OR_RETURN(const Dataset dataset,
                      ReadCsvDataset(options.path, options.columns(), options.task));
  return SplitAndStandardize(dataset, options.test_fraction, options.seed,
                             options.task == models::TaskType::kRegression);
}

}  // namespace samverka::client
