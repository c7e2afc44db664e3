// client/datasets/registry.cc
#include "client/datasets/registry.h"

#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "client/datasets/csv.h"
#include "client/datasets/idx.h"
#include "client/datasets/numpy.h"
#include "common/status_macros.h"

namespace samverka::client {
namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kValidForms =
    "valid forms: fashion-mnist, mnist, csv:PATH:LABEL_COLUMN, csv:PATH:COLUMN,COLUMN,..., "
    "npz:PATH[:X,Y], npy:FEATURES.npy:TARGETS.npy";
constexpr absl::string_view kCsvPrefix = "csv:";
constexpr absl::string_view kNpzPrefix = "npz:";
constexpr absl::string_view kNpyPrefix = "npy:";

// An IDX data set: its spec name, files and presentation.
struct IdxSource {
  absl::string_view name;
  const char* default_dir;
  absl::string_view install_hint;
  IdxNormalization normalization;
  std::vector<std::string> class_names;
};

const IdxSource& FashionMnist() {
  static const IdxSource* source = new IdxSource{
      "fashion-mnist",
      kFashionMnistDefaultDir,
      "install Debian's dataset-fashion-mnist package or set data_dir to a "
      "directory holding them",
      kFashionMnistNormalization,
      {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
       "Sneaker", "Bag", "Ankle boot"}};
  return *source;
}

const IdxSource& Mnist() {
  static const IdxSource* source = new IdxSource{
      "mnist",
      kMnistDefaultDir,
      "copy the four MNIST IDX files there or set data_dir to a directory "
      "holding them",
      kMnistNormalization,
      {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}};
  return *source;
}

// A parsed spec: an IDX source, or a CSV path and label column.
struct ParsedSpec {
  const IdxSource* idx = nullptr;
  std::string csv_path;
  std::string csv_label_column;
  std::vector<std::string> csv_columns;  // the label column split at ','
  // NumPy: an .npz file and its two array names, or two .npy files.
  std::string npz_path;
  std::string npz_features = "x";
  std::string npz_targets = "y";
  std::string npy_features;
  std::string npy_targets;
};

// npz:PATH or npz:PATH:X,Y (the last ':' ends PATH when a ',' follows it).
absl::StatusOr<ParsedSpec> ParseNpzSpec(absl::string_view spec) {
  absl::string_view rest = spec.substr(kNpzPrefix.size());
  ParsedSpec parsed;
  const size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos &&
      rest.substr(colon + 1).find(',') != absl::string_view::npos) {
    std::vector<std::string> names = absl::StrSplit(rest.substr(colon + 1), ',');
    if (names.size() != 2 || names[0].empty() || names[1].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dataset spec '", spec, "': name the features and targets arrays as npz:PATH:X,Y"));
    }
    parsed.npz_features = names[0];
    parsed.npz_targets = names[1];
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("dataset spec '", spec, "' needs a path"));
  }
  parsed.npz_path = std::string(rest);
  return parsed;
}

// npy:FEATURES.npy:TARGETS.npy (the last ':' separates them).
absl::StatusOr<ParsedSpec> ParseNpySpec(absl::string_view spec) {
  const absl::string_view rest = spec.substr(kNpyPrefix.size());
  const size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 || colon + 1 == rest.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dataset spec '", spec, "' needs two files: npy:FEATURES.npy:TARGETS.npy"));
  }
  ParsedSpec parsed;
  parsed.npy_features = std::string(rest.substr(0, colon));
  parsed.npy_targets = std::string(rest.substr(colon + 1));
  return parsed;
}

ParsedSpec IdxSpec(const IdxSource& source) {
  ParsedSpec parsed;
  parsed.idx = &source;
  return parsed;
}

absl::StatusOr<ParsedSpec> ParseCsvSpec(absl::string_view spec) {
  const absl::string_view rest = spec.substr(kCsvPrefix.size());
  const size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 ||
      colon + 1 == rest.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dataset spec '", spec,
        "' needs a path and a label column: csv:PATH:LABEL_COLUMN"));
  }
  ParsedSpec parsed;
  parsed.csv_path = std::string(rest.substr(0, colon));
  parsed.csv_label_column = std::string(rest.substr(colon + 1));
  parsed.csv_columns = absl::StrSplit(rest.substr(colon + 1), ',');
  return parsed;
}

absl::StatusOr<ParsedSpec> ParseSpec(absl::string_view spec) {
  if (spec == FashionMnist().name) return IdxSpec(FashionMnist());
  if (spec == Mnist().name) return IdxSpec(Mnist());
  if (absl::StartsWith(spec, kCsvPrefix)) return ParseCsvSpec(spec);
  if (absl::StartsWith(spec, kNpzPrefix)) return ParseNpzSpec(spec);
  if (absl::StartsWith(spec, kNpyPrefix)) return ParseNpySpec(spec);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dataset spec '", spec, "'; ", kValidForms));
}

// Returns the path of `base_name` or `base_name`.gz in `dir`.
absl::StatusOr<std::string> FindIdxFile(const IdxSource& source,
                                        const fs::path& dir,
                                        const std::string& base_name) {
  std::error_code error;
  for (const std::string& name : {base_name + ".gz", base_name}) {
    const fs::path path = dir / name;
    if (fs::is_regular_file(path, error)) return path.string();
  }
  const std::string where =
      fs::is_directory(dir, error)
          ? absl::StrCat("no ", base_name, "[.gz] in ", dir.string())
          : absl::StrCat("directory ", dir.string(), " does not exist");
  return absl::NotFoundError(absl::StrCat(
      source.name, ": ", where,
      "; it needs train-images-idx3-ubyte, train-labels-idx1-ubyte, "
      "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each plain or "
      ".gz): ",
      source.install_hint));
}

absl::StatusOr<Dataset> LoadIdxPart(const IdxSource& source,
                                    const fs::path& dir,
                                    absl::string_view prefix) {
  SV_ASSIGN_OR_RETURN(
      const std::string images,
      FindIdxFile(source, dir, absl::StrCat(prefix, "-images-idx3-ubyte")));
  SV_ASSIGN_OR_RETURN(
      const std::string labels,
      FindIdxFile(source, dir, absl::StrCat(prefix, "-labels-idx1-ubyte")));
  SV_ASSIGN_OR_RETURN(
      Dataset dataset,
      LoadIdxImagesAndLabels(images, labels, source.normalization));
  dataset.class_names = source.class_names;
  return dataset;
}

absl::StatusOr<DatasetSplit> LoadIdx(const IdxSource& source,
                                     const std::string& data_dir) {
  const fs::path dir = data_dir.empty() ? source.default_dir : data_dir;
  DatasetSplit split;
  SV_ASSIGN_OR_RETURN(split.train, LoadIdxPart(source, dir, "train"));
  SV_ASSIGN_OR_RETURN(split.test, LoadIdxPart(source, dir, "t10k"));
  return split;
}

std::string Resolve(const std::string& spec_path, const DatasetOptions& options) {
  fs::path path = spec_path;
  if (path.is_relative() && !options.data_dir.empty()) {
    path = fs::path(options.data_dir) / path;
  }
  return path.string();
}

// NumPy arrays, split like a CSV; features are kept as stored (images and
// the like are scaled by whoever saved them), regression targets are
// standardised with the training split's statistics.
absl::StatusOr<DatasetSplit> LoadNumpy(const ParsedSpec& spec, const DatasetOptions& options) {
  Dataset data;
  if (!spec.npz_path.empty()) {
    const std::string path = Resolve(spec.npz_path, options);
    SV_ASSIGN_OR_RETURN(const auto arrays, ReadNpzFile(path));
    std::vector<std::string> names;
    for (const auto& [name, array] : arrays) names.push_back(name);
    for (const std::string& name : {spec.npz_features, spec.npz_targets}) {
      if (!arrays.contains(name)) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": no array '", name, "'; it has: ", absl::StrJoin(names, ", "),
            " (name them as npz:PATH:FEATURES,TARGETS)"));
      }
    }
    SV_ASSIGN_OR_RETURN(data, NumpyDataset(arrays.at(spec.npz_features),
                                           arrays.at(spec.npz_targets), options.task,
                                           absl::StrCat(path, ": ", spec.npz_features),
                                           absl::StrCat(path, ": ", spec.npz_targets)));
  } else {
    const std::string x_path = Resolve(spec.npy_features, options);
    const std::string y_path = Resolve(spec.npy_targets, options);
    SV_ASSIGN_OR_RETURN(const NumpyArray x, ReadNpyFile(x_path));
    SV_ASSIGN_OR_RETURN(const NumpyArray y, ReadNpyFile(y_path));
    SV_ASSIGN_OR_RETURN(data, NumpyDataset(x, y, options.task, x_path, y_path));
  }
  return SplitAndStandardize(data, options.test_fraction, options.seed,
                             options.task == models::TaskType::kRegression,
                             /*standardize_features=*/false);
}

absl::StatusOr<DatasetSplit> LoadCsv(const ParsedSpec& spec,
                                     const DatasetOptions& options) {
  const fs::path path = Resolve(spec.csv_path, options);
  CsvOptions csv;
  csv.path = path.string();
  csv.label_column = spec.csv_label_column;
  csv.task = options.task;
  if (options.task != models::TaskType::kClassification) csv.target_columns = spec.csv_columns;
  csv.test_fraction = options.test_fraction;
  csv.seed = options.seed;
  return LoadCsvDataset(csv);
}

}  // namespace

absl::Status DatasetOptions::Validate() const {
  SV_RETURN_IF_ERROR(ParseSpec(spec).status());
  if (test_fraction >= 0.0 && test_fraction < 1.0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("test_fraction must be in [0, 1), got ", test_fraction));
}

absl::StatusOr<std::string> CsvFileOf(const DatasetOptions& options) {
  if (!absl::StartsWith(options.spec, kCsvPrefix)) {
    return absl::InvalidArgumentError(absl::StrCat("'", options.spec, "' is not a CSV data set"));
  }
  SV_ASSIGN_OR_RETURN(const ParsedSpec spec, ParseCsvSpec(options.spec));
  return Resolve(spec.csv_path, options);
}

absl::StatusOr<DatasetSplit> LoadDataset(const DatasetOptions& options) {
  SV_RETURN_IF_ERROR(options.Validate());
  SV_ASSIGN_OR_RETURN(const ParsedSpec spec, ParseSpec(options.spec));
  if (spec.idx != nullptr) return LoadIdx(*spec.idx, options.data_dir);
  if (!spec.npz_path.empty() || !spec.npy_features.empty()) return LoadNumpy(spec, options);
  return LoadCsv(spec, options);
}

}  // namespace samverka::client
