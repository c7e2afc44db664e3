// client/datasets/idx.cc
#include "client/datasets/idx.h"

#include <array>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "client/datasets/internal/file_reader.h"
#include "common/status_macros.h"

namespace samverka::client {
namespace {

constexpr uint8_t kDtypeUnsignedByte = 0x08;
constexpr int64_t kNumDigitClasses = 10;
constexpr size_t kMagicBytes = 4;
constexpr size_t kDimBytes = 4;

absl::string_view DtypeName(uint8_t dtype) {
  switch (dtype) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "unknown";
  }
}

uint32_t ReadBigEndian32(const std::string& bytes, size_t offset) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[offset + i]);
  }
  return value;
}

// Checks the 4-byte magic (00 00 dtype ndims) and returns ndims.
absl::StatusOr<size_t> ParseMagic(const std::string& path,
                                  const std::string& bytes) {
  if (bytes.size() < kMagicBytes) {
    return absl::DataLossError(absl::StrCat(path, ": truncated IDX header (",
                                            bytes.size(), " bytes)"));
  }
  const auto b = [&](size_t i) { return static_cast<uint8_t>(bytes[i]); };
  if (b(0) != 0 || b(1) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: bad magic 0x%08x, not an IDX file (expected 00 00 <dtype> "
        "<ndims>)",
        path, ReadBigEndian32(bytes, 0)));
  }
  if (b(2) != kDtypeUnsignedByte) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: unsupported IDX dtype 0x%02x (%s); only 0x08 (unsigned byte) "
        "is supported",
        path, b(2), DtypeName(b(2))));
  }
  if (b(3) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": IDX header declares 0 dimensions"));
  }
  return static_cast<size_t>(b(3));
}

// Reads `ndims` dimensions after the magic and checks that the payload has
// exactly as many bytes as they declare.
absl::StatusOr<std::vector<int64_t>> ParseDims(const std::string& path,
                                               const std::string& bytes,
                                               size_t ndims) {
  const size_t header = kMagicBytes + kDimBytes * ndims;
  if (bytes.size() < header) {
    return absl::DataLossError(absl::StrCat(
        path, ": truncated IDX header: ", ndims, " dimensions need ", header,
        " bytes, file has ", bytes.size()));
  }
  std::vector<int64_t> dims(ndims);
  const uint64_t payload = bytes.size() - header;
  uint64_t expected = 1;
  bool exceeds = false;
  for (size_t i = 0; i < ndims; ++i) {
    dims[i] = ReadBigEndian32(bytes, kMagicBytes + kDimBytes * i);
    const auto d = static_cast<uint64_t>(dims[i]);
    if (d != 0 && expected > internal::kMaxFileBytes / d) exceeds = true;
    expected = exceeds ? expected : expected * d;
  }
  if (exceeds || payload < expected) {
    return absl::DataLossError(absl::StrCat(
        path, ": truncated IDX file: dimensions ", absl::StrJoin(dims, "x"),
        " need ", exceeds ? "more than 4 GiB" : absl::StrCat(expected),
        " data bytes, the file holds ", payload));
  }
  if (payload > expected) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", payload - expected,
                     " unexpected trailing bytes after the IDX data"));
  }
  return dims;
}

absl::Status CheckRank(const std::string& path, const IdxArray& array,
                       size_t rank, absl::string_view meaning) {
  if (array.dims.size() == rank) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(path, ": expected ", rank,
                                                 " IDX dimensions (", meaning,
                                                 "), got ", array.dims.size()));
}

absl::Status CheckNormalization(const IdxNormalization& normalization) {
  if (std::isfinite(normalization.mean) &&
      std::isfinite(normalization.stddev) && normalization.stddev > 0) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("IDX normalisation needs a finite mean and stddev > 0, got "
                   "mean ",
                   normalization.mean, " stddev ", normalization.stddev));
}

absl::StatusOr<std::vector<int64_t>> ConvertLabels(const std::string& path,
                                                   const IdxArray& labels) {
  std::vector<int64_t> out(labels.values.begin(), labels.values.end());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] >= kNumDigitClasses) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": label ", out[i], " at index ", i,
                       " is out of range [0, ", kNumDigitClasses, ")"));
    }
  }
  return out;
}

std::vector<float> ConvertPixels(const std::vector<uint8_t>& pixels,
                                 const IdxNormalization& normalization) {
  std::array<float, 256> table;
  for (int v = 0; v < 256; ++v) {
    table[v] = (static_cast<float>(v) / 255.0f - normalization.mean) /
               normalization.stddev;
  }
  std::vector<float> out(pixels.size());
  for (size_t i = 0; i < pixels.size(); ++i) out[i] = table[pixels[i]];
  return out;
}

}  // namespace

absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path) {
  SV_ASSIGN_OR_RETURN(std::string bytes, internal::ReadFileMaybeGzip(path));
  SV_ASSIGN_OR_RETURN(const size_t ndims, ParseMagic(path, bytes));
  IdxArray array;
  SV_ASSIGN_OR_RETURN(array.dims, ParseDims(path, bytes, ndims));
  const size_t header = kMagicBytes + kDimBytes * ndims;
  array.values.assign(bytes.begin() + header, bytes.end());
  return array;
}

absl::StatusOr<Dataset> LoadIdxImagesAndLabels(
    const std::string& images_path, const std::string& labels_path,
    const IdxNormalization& normalization) {
  SV_RETURN_IF_ERROR(CheckNormalization(normalization));
  SV_ASSIGN_OR_RETURN(IdxArray images, ReadIdxFile(images_path));
  SV_RETURN_IF_ERROR(CheckRank(images_path, images, 3, "count, rows, cols"));
  SV_ASSIGN_OR_RETURN(const IdxArray labels, ReadIdxFile(labels_path));
  SV_RETURN_IF_ERROR(CheckRank(labels_path, labels, 1, "count"));
  if (images.dims[0] != labels.dims[0]) {
    return absl::InvalidArgumentError(absl::StrCat(
        "count mismatch: ", images_path, " has ", images.dims[0],
        " images but ", labels_path, " has ", labels.dims[0], " labels"));
  }
  Dataset dataset;
  SV_ASSIGN_OR_RETURN(dataset.labels, ConvertLabels(labels_path, labels));
  dataset.sample_shape = {1, images.dims[1], images.dims[2]};
  dataset.features = ConvertPixels(images.values, normalization);
  dataset.num_classes = kNumDigitClasses;
  return dataset;
}

}  // namespace samverka::client
