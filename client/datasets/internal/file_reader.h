// client/datasets/internal/file_reader.h
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace samverka::client::internal {

// Largest file (after decompression) the loaders will hold in memory.
inline constexpr size_t kMaxFileBytes = size_t{4} << 30;

// Returns the whole content of `path`. A file starting with the gzip magic
// bytes 1f 8b is decompressed (zlib); any other file is returned as is.
// kNotFound if the file does not exist, kPermissionDenied if it cannot be
// read, kInvalidArgument for a directory, kDataLoss for a truncated or corrupt
// gzip stream, kResourceExhausted past kMaxFileBytes. Messages name `path`.
absl::StatusOr<std::string> ReadFileMaybeGzip(const std::string& path);

}  // namespace samverka::client::internal
