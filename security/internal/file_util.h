// security/internal/file_util.h
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "security/secret_bytes.h"

namespace samverka::security::internal {

// Replaces (or creates) `path` atomically with `bytes` and permission
// `mode`: writes a temporary file in the same directory (created 0600, so a
// key is never readable by others, even briefly), fsyncs it, renames it over
// `path` and fsyncs the directory. Readers see the old or the new file, never
// a mix. kInternal (naming the path and errno) on failure; the temporary
// file is removed.
absl::Status WriteFileAtomically(const std::string& path,
                                 std::span<const uint8_t> bytes, mode_t mode);
absl::Status WriteFileAtomically(const std::string& path,
                                 std::string_view bytes, mode_t mode);

// The contents of `path`. kNotFound if it does not exist, kInvalidArgument
// if it is larger than `max_size` or not a regular file, kInternal otherwise.
absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     size_t max_size = size_t{1} << 20);
// As ReadFile, into SecretBytes (for private keys); nothing is left behind
// in other buffers.
absl::StatusOr<SecretBytes> ReadSecretFile(const std::string& path,
                                           size_t max_size = size_t{1} << 16);

// Creates directory `path` (not its parents) with `mode` if it does not
// exist. OK if it already is a directory; kFailedPrecondition if it is
// something else.
absl::Status MakeDirectory(const std::string& path, mode_t mode);

// True if `path` exists (as anything, including a dangling symlink).
bool PathExists(const std::string& path);

// Removes the file `path` if it exists.
absl::Status RemoveFileIfExists(const std::string& path);

// An exclusive advisory lock (flock) on a lock file, held until destroyed,
// so two processes never modify one CA directory at once. Move-only.
class FileLock {
 public:
  // Creates `path` if needed and locks it without waiting. kUnavailable if
  // another process holds it.
  static absl::StatusOr<FileLock> Acquire(const std::string& path);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}

  int fd_ = -1;
};

}  // namespace samverka::security::internal
