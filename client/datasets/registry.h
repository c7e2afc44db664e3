// client/datasets/registry.h
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/dataset.h"
#include "models/tasks/task_type.h"

namespace samverka::client {

// Where Debian's dataset-fashion-mnist package installs its IDX files.
inline constexpr char kFashionMnistDefaultDir[] =
    "/usr/share/datasets/fashion-mnist";
// Where `mnist` looks when data_dir is empty (no Debian package ships it).
inline constexpr char kMnistDefaultDir[] = "/usr/share/datasets/mnist";

// Names a data set and where to find it; the one entry point that apps and
// simulations use to get a train/test split.
struct DatasetOptions {
  // One of:
  //   "fashion-mnist"          IDX files, default dir kFashionMnistDefaultDir
  //   "mnist"                  IDX files, default dir kMnistDefaultDir
  //   "csv:PATH:LABEL_COLUMN"  a CSV table (the last ':' ends PATH)
  //   "csv:PATH:COL,COL,..."   the same for tasks other than classification:
  //                            the target columns (survival: time,event)
  //   "npz:PATH[:X,Y]"         NumPy arrays X (default "x", features) and Y
  //                            (default "y", labels or targets) of an .npz
  //   "npy:FEATURES:TARGETS"   two .npy files (the last ':' separates them)
  std::string spec;
  // IDX data sets: the directory holding train-images-idx3-ubyte,
  // train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte
  // (each plain or .gz); empty means the default above. CSV: the base for a
  // relative PATH; empty means the current directory.
  std::string data_dir;
  // CSV and NumPy (IDX data sets come with a fixed split): share of rows
  // held out for testing, in [0, 1).
  double test_fraction = 0.2;
  // CSV and NumPy: seeds the shuffle that decides the split.
  uint64_t seed = 0;
  // What the targets are learned as; decides how a CSV's columns are read.
  models::TaskType task = models::TaskType::kClassification;

  // kInvalidArgument for a malformed or unknown spec (the message lists the
  // valid forms) or a test_fraction outside [0, 1). Touches no files.
  absl::Status Validate() const;
};

// The file of a CSV data set ("csv:PATH:..."), resolved against data_dir;
// kInvalidArgument for another kind of data set.
absl::StatusOr<std::string> CsvFileOf(const DatasetOptions& options);

// Loads the data set named by `options`. IDX images get sample_shape
// {1, 28, 28}, pixels scaled to [0, 1] and then normalised with the data
// set's usual mean and standard deviation (kMnistNormalization,
// kFashionMnistNormalization in idx.h), and class_names. CSV as
// LoadCsvDataset (features standardised with train statistics).
// kNotFound (saying where it looked and how to provide the files), otherwise
// the errors of Validate and of the loaders.
absl::StatusOr<DatasetSplit> LoadDataset(const DatasetOptions& options);

}  // namespace samverka::client
