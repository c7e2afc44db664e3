// client/datasets/registry.cc
#include "client/datasets/registry.h"

#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/datasets/csv.h"
#include "client/datasets/idx.h"
#include "common/status_macros.h"

namespace samverka::client {
namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kValidForms =
    "valid forms: fashion-mnist, mnist, csv:PATH:LABEL_COLUMN";
constexpr absl::string_view kCsvPrefix = "csv:";

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
};

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
  return parsed;
}

absl::StatusOr<ParsedSpec> ParseSpec(absl::string_view spec) {
  if (spec == FashionMnist().name) return IdxSpec(FashionMnist());
  if (spec == Mnist().name) return IdxSpec(Mnist());
  if (absl::StartsWith(spec, kCsvPrefix)) return ParseCsvSpec(spec);
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

absl::StatusOr<DatasetSplit> LoadCsv(const ParsedSpec& spec,
                                     const DatasetOptions& options) {
  fs::path path = spec.csv_path;
  if (path.is_relative() && !options.data_dir.empty()) {
    path = fs::path(options.data_dir) / path;
  }
  CsvOptions csv;
  csv.path = path.string();
  csv.label_column = spec.csv_label_column;
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

absl::StatusOr<DatasetSplit> LoadDataset(const DatasetOptions& options) {
  SV_RETURN_IF_ERROR(options.Validate());
  SV_ASSIGN_OR_RETURN(const ParsedSpec spec, ParseSpec(options.spec));
  if (spec.idx != nullptr) return LoadIdx(*spec.idx, options.data_dir);
  return LoadCsv(spec, options);
}

}  // namespace samverka::client
