// client/datasets/idx.h
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dataset.h"

namespace samverka::client {

// One array read from an IDX file (the MNIST format): big-endian dimensions
// and unsigned-byte values, row-major. Only dtype 0x08 (ubyte) is supported.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> values;
};

// Affine map applied to pixels after scaling them to [0, 1]:
// x -> (x - mean) / stddev. The default leaves pixels in [0, 1].
struct IdxNormalization {
  float mean = 0.0f;
  float stddev = 1.0f;
};

// Per-dataset constants (mean and standard deviation of the training
// pixels scaled to [0, 1]), as used by torchvision examples.
inline constexpr IdxNormalization kMnistNormalization{0.1307f, 0.3081f};
inline constexpr IdxNormalization kFashionMnistNormalization{0.2860f, 0.3530f};

// Reads one IDX file, plain or gzip-compressed (detected by its magic bytes,
// not its name). Errors name `path`: kNotFound (no file), kInvalidArgument
// (bad magic, unsupported dtype, no dimensions, trailing bytes), kDataLoss
// (truncated header or payload, corrupt gzip).
absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path);

// Loads an image file (3 dims: count, rows, cols) and its label file
// (1 dim: count, labels in [0, 10)) into a Dataset with sample_shape
// {1, rows, cols}, num_classes 10 and pixels scaled to [0, 1] and then
// normalised by `normalization`. class_names is left empty.
// Errors as ReadIdxFile, plus kInvalidArgument (naming the file) for wrong
// rank, a count mismatch between the files, or a label out of range.
absl::StatusOr<Dataset> LoadIdxImagesAndLabels(
    const std::string& images_path, const std::string& labels_path,
    const IdxNormalization& normalization = {});

}  // namespace samverka::client
