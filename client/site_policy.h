// client/site_policy.h
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/task.h"

namespace samverka::client {

// A site's own rules for the tasks it accepts (client.toml; see
// docs/configuration.md). They live in the site's configuration, so the
// coordinator cannot override them.
struct SitePolicy {
  // Refuse training without secure aggregation.
  bool require_secure_aggregation = false;
  // Refuse rounds whose cohort has fewer sites (0: no rule).
  int min_cohort = 0;
  // Refuse models other than these: built-in names, TorchScript file names,
  // or the SHA-256 (hex) of the site's TorchScript file. Empty: any.
  std::vector<std::string> allowed_models;
  // Refuse training beyond this many rounds in any 24 hours (0: no rule).
  int max_rounds_per_day = 0;
  // Refuse training without differential privacy, or once the site's own
  // privacy loss, counted over the rounds it trained in (RDP accountant,
  // security/dp), would exceed (max_epsilon, max_epsilon_delta). 0: no rule.
  double max_epsilon = 0;
  double max_epsilon_delta = 1e-5;

  // kInvalidArgument naming the bad field.
  absl::Status Validate() const;
};

// Enforces a SitePolicy before a task touches the site's data and keeps
// the ledger of rounds trained (a JSON file, so a restart does not reset
// the daily budget). Thread-compatible.
class SitePolicyEnforcer {
 public:
  // `ledger_path` may be empty (no persistence, for tests and simulations);
  // an existing ledger is read, a corrupt one is an error naming the file.
  // `model_file_digest` is the SHA-256 of the site's TorchScript file, if any.
  static absl::StatusOr<SitePolicyEnforcer> Create(SitePolicy policy, std::string ledger_path,
                                                   std::string model_file_digest = "");

  // OK, or kFailedPrecondition whose message is the reason to log and
  // report (it never mentions data).
  absl::Status Check(const ClientTask& task, absl::Time now) const;
  // The site's privacy loss so far (epsilon at max_epsilon_delta), over
  // the DP rounds it trained in.
  absl::StatusOr<double> EpsilonSpent() const;
  // Records that the site trained in `task`'s round at `now`; writes the
  // ledger atomically (temp file + rename).
  absl::Status RecordTraining(const ClientTask& task, absl::Time now);

  const SitePolicy& policy() const { return policy_; }

 private:
  SitePolicyEnforcer(SitePolicy policy, std::string ledger_path, std::string model_file_digest)
      : policy_(std::move(policy)),
        ledger_path_(std::move(ledger_path)),
        model_file_digest_(std::move(model_file_digest)) {}

  SitePolicy policy_;
  std::string ledger_path_;
  std::string model_file_digest_;
  // Unix seconds of the rounds trained in the last 24 hours.
  std::vector<int64_t> trained_;
  // (sampling rate, noise multiplier) of every DP round trained.
  std::vector<std::pair<double, double>> dp_steps_;
};

}  // namespace samverka::client
