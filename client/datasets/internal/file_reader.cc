// client/datasets/internal/file_reader.cc
#include "client/datasets/internal/file_reader.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace samverka::client::internal {
namespace {

constexpr unsigned char kGzipMagic0 = 0x1f;
constexpr unsigned char kGzipMagic1 = 0x8b;
constexpr unsigned kChunkBytes = 1u << 20;

struct GzCloser {
  void operator()(gzFile file) const { gzclose(file); }
};
using GzFilePtr = std::unique_ptr<gzFile_s, GzCloser>;

absl::Status CheckReadableFile(const std::string& path) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  if (std::filesystem::is_directory(status)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": is a directory, expected a file"));
  }
  return absl::OkStatus();
}

absl::Status OpenError(const std::string& path, int error_number) {
  return absl::ErrnoToStatus(error_number, absl::StrCat(path, ": cannot open"));
}

// True if the file starts with the gzip magic bytes.
absl::StatusOr<bool> IsGzip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return OpenError(path, errno);
  unsigned char magic[2] = {0, 0};
  in.read(reinterpret_cast<char*>(magic), 2);
  return in.gcount() == 2 && magic[0] == kGzipMagic0 && magic[1] == kGzipMagic1;
}

absl::Status TooLarge(const std::string& path) {
  return absl::ResourceExhaustedError(absl::StrCat(
      path, ": larger than ", kMaxFileBytes, " bytes, refusing to load"));
}

absl::StatusOr<std::string> ReadPlain(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return OpenError(path, errno);
  const std::streamoff size = in.tellg();
  if (size < 0) return absl::DataLossError(absl::StrCat(path, ": cannot seek"));
  if (static_cast<uint64_t>(size) > kMaxFileBytes) return TooLarge(path);
  std::string content(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(content.data(), size);
  if (in.gcount() != size) {
    return absl::DataLossError(absl::StrCat(path, ": short read"));
  }
  return content;
}

absl::StatusOr<std::string> ReadGzip(const std::string& path) {
  errno = 0;
  GzFilePtr file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) return OpenError(path, errno == 0 ? ENOMEM : errno);
  gzbuffer(file.get(), kChunkBytes);
  std::string content;
  while (true) {
    const size_t old_size = content.size();
    if (old_size > kMaxFileBytes) return TooLarge(path);
    content.resize(old_size + kChunkBytes);
    const int got = gzread(file.get(), content.data() + old_size, kChunkBytes);
    int error_number = Z_OK;
    const char* message = gzerror(file.get(), &error_number);
    if (got < 0 || error_number != Z_OK) {
      return absl::DataLossError(absl::StrCat(
          path, ": corrupt or truncated gzip stream (", message, ")"));
    }
    content.resize(old_size + static_cast<size_t>(got));
    if (got == 0) break;
  }
  content.shrink_to_fit();
  return content;
}

}  // namespace

absl::StatusOr<std::string> ReadFileMaybeGzip(const std::string& path) {
  SV_RETURN_IF_ERROR(CheckReadableFile(path));
  SV_ASSIGN_OR_RETURN(const bool gzip, IsGzip(path));
  return gzip ? ReadGzip(path) : ReadPlain(path);
}

}  // namespace samverka::client::internal
