// coordinator/internal/durable_files.h
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace samverka::coordinator::internal {

// An errno as a Status naming what failed and the path: kNotFound,
// kPermissionDenied, kResourceExhausted (disk full) or kInternal.
absl::Status ErrnoError(int error, std::string_view what, const std::string& path);

// fsync(2) of a file or directory.
absl::Status FsyncPath(const std::string& path);

// Writes `bytes` to `path` so that a crash leaves either the old file or
// the complete new one: temp file (created with `mode`), fsync, rename,
// fsync of the directory.
absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes,
                                 mode_t mode = 0644);

// The whole file.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace samverka::coordinator::internal
