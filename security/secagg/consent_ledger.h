// security/secagg/consent_ledger.h
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "security/secret_bytes.h"

namespace samverka::security::secagg {

// What a site's update is a function of, besides randomness the coordinator
// could replay: the federation, the site's data set and the model the round
// starts from. Two revealed sums in one scope could be differenced.
struct ContributionScope {
  std::string federation_id;
  std::string dataset;
  std::string model_digest;

  // One printable key for the ledger ("federation/dataset/model").
  std::string Key() const;
};

// A site's durable record of what it contributed to secure sums, and the
// rule it enforces with it: per scope, the site releases the consent seed of
// at most one instance (security/secagg/consent.h). It holds the site's
// consent key (DIR/secagg-consent.key, 32 random bytes, 0600, made at first
// use) and appends each decision to DIR/secagg-ledger.jsonl, fsync'd before
// the method returns, so nothing leaves the site before it is on disk: a
// masked input is recorded before it is sent, a released seed before it
// leaves. A crash mid-append leaves a torn last line, which is ignored (its
// action never happened). Thread-safe.
class ConsentLedger {
 public:
  // `dir` empty: in memory only (tests, simulations), with a random key.
  // kDataLoss naming the file for a corrupt ledger or key file;
  // kFailedPrecondition if `dir` is not writable.
  static absl::StatusOr<std::unique_ptr<ConsentLedger>> Open(const std::string& dir);

  // OK if the site may still send a masked input in `scope`; otherwise
  // kFailedPrecondition saying which instance it released (the reason to
  // report: the coordinator could subtract a second sum from the first).
  absl::Status CheckCanContribute(const ContributionScope& scope) const;
  // Records that a masked input of `instance` in `scope` (round `round`) is
  // about to be sent and returns the consent seed to mask it with. Refused
  // as CheckCanContribute.
  absl::StatusOr<SecretBytes> BeginContribution(const ContributionScope& scope,
                                                const std::string& instance, int64_t round);
  // Records and returns the consent seed of `instance` for the coordinator:
  // allowed if the site sent a masked input of `instance` in `scope` and has
  // released no other instance there (releasing the same one again is
  // allowed and returns the same seed). kFailedPrecondition otherwise.
  absl::StatusOr<SecretBytes> Release(const ContributionScope& scope, const std::string& instance,
                                      int64_t round);

 private:
  ConsentLedger(std::string path, SecretBytes key) : path_(std::move(path)), key_(std::move(key)) {}
  absl::Status Append(const std::string& event, const ContributionScope& scope,
                      const std::string& instance, int64_t round)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Status CheckCanContributeLocked(const ContributionScope& scope) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::string path_;  // empty: in memory
  const SecretBytes key_;
  mutable absl::Mutex mutex_;
  // Instances a masked input was sent for, and the one released, by scope.
  std::map<std::string, std::set<std::string>> masked_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::string> released_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace samverka::security::secagg
