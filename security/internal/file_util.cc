// security/internal/file_util.cc
#include "security/internal/file_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "security/internal/openssl_util.h"

namespace samverka::security::internal {
namespace {

absl::Status ErrnoError(std::string_view what, const std::string& path,
                        int error) {
  return absl::InternalError(std::string(what) + " " + path + ": " +
                             std::strerror(error));
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Closes `fd` on scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

absl::Status WriteAll(int fd, std::span<const uint8_t> bytes,
                      const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t written = write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write", path, errno);
    }
    bytes = bytes.subspan(static_cast<size_t>(written));
  }
  return absl::OkStatus();
}

absl::Status SyncDirectory(const std::string& directory) {
  const int fd = open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open directory", directory, errno);
  FdCloser closer(fd);
  if (fsync(fd) != 0) return ErrnoError("cannot fsync", directory, errno);
  return absl::OkStatus();
}

// Opens `path` for reading and checks it is a regular file of at most
// `max_size` bytes; returns the fd and sets `*size`.
absl::StatusOr<int> OpenForReading(const std::string& path, size_t max_size,
                                   size_t* size) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(path + " does not exist");
    return ErrnoError("cannot open", path, errno);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int error = errno;
    close(fd);
    return ErrnoError("cannot stat", path, error);
  }
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) > max_size) {
    close(fd);
    return absl::InvalidArgumentError(path +
                                      " is not a regular file of at most " +
                                      std::to_string(max_size) + " bytes");
  }
  *size = static_cast<size_t>(st.st_size);
  return fd;
}

// Reads exactly out.size() bytes (the file may not have shrunk meanwhile).
absl::Status ReadAll(int fd, std::span<uint8_t> out, const std::string& path) {
  while (!out.empty()) {
    const ssize_t got = read(fd, out.data(), out.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot read", path, errno);
    }
    if (got == 0) return absl::InternalError(path + " changed while reading");
    out = out.subspan(static_cast<size_t>(got));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path,
                                 std::span<const uint8_t> bytes, mode_t mode) {
  const std::string directory = DirectoryOf(path);
  const std::string base = path.substr(path.find_last_of('/') + 1);
  std::string temp = directory + "/." + base + ".tmp.XXXXXX";
  // mkstemp creates the file with mode 0600.
  const int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot create a file in", directory, errno);
  absl::Status status = [&]() -> absl::Status {
    FdCloser closer(fd);
    if (absl::Status s = WriteAll(fd, bytes, temp); !s.ok()) return s;
    if (fchmod(fd, mode) != 0) return ErrnoError("cannot chmod", temp, errno);
    if (fsync(fd) != 0) return ErrnoError("cannot fsync", temp, errno);
    return absl::OkStatus();
  }();
  if (status.ok() && rename(temp.c_str(), path.c_str()) != 0) {
    status = ErrnoError("cannot rename a temporary file to", path, errno);
  }
  if (!status.ok()) {
    unlink(temp.c_str());
    return status;
  }
  return SyncDirectory(directory);
}

absl::Status WriteFileAtomically(const std::string& path,
                                 std::string_view bytes, mode_t mode) {
  return WriteFileAtomically(
      path, std::span<const uint8_t>(Bytes(bytes), bytes.size()), mode);
}

absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_size) {
  size_t size = 0;
  absl::StatusOr<int> fd = OpenForReading(path, max_size, &size);
  if (!fd.ok()) return fd.status();
  FdCloser closer(*fd);
  std::string contents(size, '\0');
  absl::Status status = ReadAll(
      *fd,
      std::span<uint8_t>(reinterpret_cast<uint8_t*>(contents.data()), size),
      path);
  if (!status.ok()) return status;
  return contents;
}

absl::StatusOr<SecretBytes> ReadSecretFile(const std::string& path,
                                           size_t max_size) {
  size_t size = 0;
  absl::StatusOr<int> fd = OpenForReading(path, max_size, &size);
  if (!fd.ok()) return fd.status();
  FdCloser closer(*fd);
  SecretBytes contents(size);
  absl::Status status = ReadAll(*fd, contents.mutable_span(), path);
  if (!status.ok()) return status;
  return contents;
}

absl::Status MakeDirectory(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) == 0) {
    // mkdir applies the umask; the mode asked for is the mode wanted.
    if (chmod(path.c_str(), mode) != 0) {
      return ErrnoError("cannot chmod", path, errno);
    }
    return SyncDirectory(DirectoryOf(path));
  }
  if (errno != EEXIST)
    return ErrnoError("cannot create directory", path, errno);
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(path +
                                         " exists but is not a directory");
  }
  return absl::OkStatus();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

absl::Status RemoveFileIfExists(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError("cannot remove", path, errno);
  }
  return absl::OkStatus();
}

absl::StatusOr<FileLock> FileLock::Acquire(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("cannot open lock file", path, errno);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    close(fd);
    if (error == EWOULDBLOCK) {
      return absl::UnavailableError(
          path +
          " is locked: another samverka pki command is using this "
          "directory; try again when it has finished");
    }
    return ErrnoError("cannot lock", path, error);
  }
  return FileLock(fd);
}

FileLock::FileLock(FileLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) close(fd_);  // closing releases the flock
}

}  // namespace samverka::security::internal
