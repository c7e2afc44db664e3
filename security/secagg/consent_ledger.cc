#include "security/secagg/consent_ledger.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "security/internal/file_util.h"
#include "security/secagg/consent.h"

namespace samverka::security::secagg {
namespace {

constexpr char kKeyFile[] = "secagg-consent.key";
constexpr char kLedgerFile[] = "secagg-ledger.jsonl";

// Appends `line` to `path` and fsyncs it (and, for a new file, its
// directory) before returning.
absl::Status AppendDurably(const std::string& path, const std::string& line) {
  const bool fresh = !std::filesystem::exists(path);
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  for (size_t written = 0; written < line.size();) {
    const ssize_t n = ::write(fd, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(error)));
    }
    written += static_cast<size_t>(n);
  }
  const int synced = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (synced != 0) {
    return absl::InternalError(absl::StrCat("cannot fsync ", path, ": ", std::strerror(error)));
  }
  if (fresh) {
    const std::string dir = std::filesystem::path(path).parent_path().string();
    const int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      ::fsync(dir_fd);
      ::close(dir_fd);
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string ContributionScope::Key() const {
  return absl::StrCat(federation_id, "/", dataset, "/", model_digest);
}

absl::StatusOr<std::unique_ptr<ConsentLedger>> ConsentLedger::Open(const std::string& dir) {
  if (dir.empty()) {
    return std::unique_ptr<ConsentLedger>(new ConsentLedger("", SecretBytes::Random(32)));
  }
  const std::string key_path = (std::filesystem::path(dir) / kKeyFile).string();
  if (!internal::PathExists(key_path)) {
    const SecretBytes fresh = SecretBytes::Random(32);
    if (absl::Status written = internal::WriteFileAtomically(key_path, fresh.span(), 0600);
        !written.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create the site's consent key: ", written.message()));
    }
  }
  SV_ASSIGN_OR_RETURN(SecretBytes key, internal::ReadSecretFile(key_path, 64));
  if (key.size() != 32) {
    return absl::DataLossError(absl::StrCat(
        "the site's consent key ", key_path, " has ", key.size(),
        " bytes, not 32; restore it from a backup (a new key cannot release sums the site "
        "already contributed to)"));
  }
  const std::string path = (std::filesystem::path(dir) / kLedgerFile).string();
  auto ledger = std::unique_ptr<ConsentLedger>(new ConsentLedger(path, std::move(key)));
  absl::StatusOr<std::string> text = internal::ReadFile(path, size_t{1} << 30);
  if (!text.ok() && text.status().code() != absl::StatusCode::kNotFound) return text.status();
  if (!text.ok()) return ledger;
  if (!text->empty() && text->back() != '\n') {
    // A torn last line: its action never happened; cut it so that the next
    // decision starts a line of its own.
    const size_t keep = text->rfind('\n') == std::string::npos ? 0 : text->rfind('\n') + 1;
    if (::truncate(path.c_str(), static_cast<off_t>(keep)) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot repair ", path, ": ", std::strerror(errno)));
    }
    text->resize(keep);
  }
  const std::vector<std::string> lines = absl::StrSplit(*text, '\n');
  absl::MutexLock lock(&ledger->mutex_);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    nlohmann::json entry = nlohmann::json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
    const bool valid = entry.is_object() && entry.contains("event") && entry.contains("scope") &&
                       entry.contains("instance") && entry["event"].is_string() &&
                       entry["scope"].is_string() && entry["instance"].is_string();
    if (!valid) {
      return absl::DataLossError(absl::StrCat(
          "the site's secure aggregation ledger ", path, " is corrupt at line ", i + 1,
          "; restore it from a backup: without it the site could release a second sum from a "
          "model it contributed to"));
    }
    const std::string scope = entry["scope"], instance = entry["instance"], event = entry["event"];
    if (event == "masked_input") {
      ledger->masked_[scope].insert(instance);
    } else if (event == "released") {
      ledger->released_[scope] = instance;
    }
  }
  return ledger;
}

absl::Status ConsentLedger::Append(const std::string& event, const ContributionScope& scope,
                                   const std::string& instance, int64_t round) {
  if (path_.empty()) return absl::OkStatus();
  const nlohmann::json entry = {{"event", event},
                                {"scope", scope.Key()},
                                {"instance", instance},
                                {"round", round},
                                {"unix_seconds", absl::ToUnixSeconds(absl::Now())}};
  return AppendDurably(path_, entry.dump() + "\n");
}

absl::Status ConsentLedger::CheckCanContributeLocked(const ContributionScope& scope) const {
  if (auto it = released_.find(scope.Key()); it != released_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this site already released a secure sum that includes its update from model ",
        scope.model_digest.substr(0, 16), " on data set '", scope.dataset,
        "' (instance ", it->second.substr(0, 16),
        "); a second sum from the same model would let the coordinator subtract one from the "
        "other and learn this site's update"));
  }
  return absl::OkStatus();
}

absl::Status ConsentLedger::CheckCanContribute(const ContributionScope& scope) const {
  absl::MutexLock lock(&mutex_);
  return CheckCanContributeLocked(scope);
}

absl::StatusOr<SecretBytes> ConsentLedger::BeginContribution(const ContributionScope& scope,
                                                             const std::string& instance,
                                                             int64_t round) {
  absl::MutexLock lock(&mutex_);
  SV_RETURN_IF_ERROR(CheckCanContributeLocked(scope));
  SV_ASSIGN_OR_RETURN(SecretBytes seed, DeriveConsentSeed(key_, instance));
  if (!masked_[scope.Key()].contains(instance)) {
    SV_RETURN_IF_ERROR(Append("masked_input", scope, instance, round));
    masked_[scope.Key()].insert(instance);
  }
  return seed;
}

absl::StatusOr<SecretBytes> ConsentLedger::Release(const ContributionScope& scope,
                                                   const std::string& instance, int64_t round) {
  absl::MutexLock lock(&mutex_);
  auto released = released_.find(scope.Key());
  if (released != released_.end() && released->second != instance) {
    return CheckCanContributeLocked(scope);
  }
  auto masked = masked_.find(scope.Key());
  if (masked == masked_.end() || !masked->second.contains(instance)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this site sent no masked input of instance ", instance.substr(0, 16), " from model ",
        scope.model_digest.substr(0, 16), "; it has nothing to release"));
  }
  SV_ASSIGN_OR_RETURN(SecretBytes seed, DeriveConsentSeed(key_, instance));
  if (released == released_.end()) {
    SV_RETURN_IF_ERROR(Append("released", scope, instance, round));
    released_[scope.Key()] = instance;
  }
  return seed;
}

}  // namespace samverka::security::secagg
