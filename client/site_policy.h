// client/site_policy.h
#pragma once

#include <cstdint>
#include <map>
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
  // Refuse models other than these: built-in names ("mlp") or the SHA-256
  // (64 hex digits) of a TorchScript file a study brings. Empty: any.
  std::vector<std::string> allowed_models;
  // Refuse training beyond this many rounds in any 24 hours (0: no rule).
  int max_rounds_per_day = 0;
  // Refuse training without differential privacy, or once the site's own
  // privacy loss on a data set, counted over the rounds of every study that
  // trained on it (RDP accountant, security/dp), would exceed (max_epsilon,
  // max_epsilon_delta). 0: no rule.
  double max_epsilon = 0;
  double max_epsilon_delta = 1e-5;
  // Statistics studies (statistics/): refuse them all, or any whose data
  // set has fewer rows than min_count, or whose manifest would release
  // counts smaller than min_count (its own min_count below this one).
  bool allow_statistics = true;
  int64_t min_count = 5;

  // kInvalidArgument naming the bad field (an allowed_models entry that is
  // neither a built-in name nor a SHA-256 is one).
  absl::Status Validate() const;
};

// What the policy sees of a task besides the task itself.
struct TaskScope {
  // The name of the site's data set the task would read (client.toml
  // [datasets]); the privacy budget is counted per data set.
  std::string dataset;
  // Lower-case hex SHA-256 of the task's TorchScript file (signed with its
  // study); empty for a built-in model.
  std::string model_sha256;
};

// Enforces a SitePolicy before a task touches the site's data and keeps
// the ledger of rounds trained (a JSON file, so a restart does not reset
// the daily budget or the privacy spent). Thread-compatible.
class SitePolicyEnforcer {
 public:
  // `ledger_path` may be empty (no persistence, for tests and simulations);
  // an existing ledger is read, a corrupt one is an error naming the file.
  // A ledger written before data sets had names holds its privacy steps
  // under "dp_steps": they are charged to every data set, since which one
  // they used is unknown.
  static absl::StatusOr<SitePolicyEnforcer> Create(SitePolicy policy, std::string ledger_path);

  // OK, or kFailedPrecondition whose message is the reason to log and
  // report (it never mentions data).
  absl::Status Check(const ClientTask& task, const TaskScope& scope, absl::Time now) const;
  // The site's privacy loss so far on `dataset` (epsilon at
  // max_epsilon_delta), over the DP rounds of every study that trained on it.
  absl::StatusOr<double> EpsilonSpent(const std::string& dataset) const;
  // Records that the site trained on `dataset` in `task`'s round at `now`
  // (or released a statistics study's sum: its DP step only);
  // writes the ledger atomically (temp file + rename).
  absl::Status RecordTraining(const ClientTask& task, const std::string& dataset, absl::Time now);

  const SitePolicy& policy() const { return policy_; }

 private:
  SitePolicyEnforcer(SitePolicy policy, std::string ledger_path)
      : policy_(std::move(policy)), ledger_path_(std::move(ledger_path)) {}
  absl::Status Load();
  // The privacy budget: kFailedPrecondition if `task`'s step (task.dp)
  // would bring the loss on scope.dataset past max_epsilon.
  absl::Status CheckBudget(const ClientTask& task, const TaskScope& scope) const;
  // (sampling rate, noise multiplier) of every DP round charged to `dataset`.
  std::vector<std::pair<double, double>> StepsOf(const std::string& dataset) const;

  SitePolicy policy_;
  std::string ledger_path_;
  // Unix seconds of the rounds trained in the last 24 hours (any data set).
  std::vector<int64_t> trained_;
  // (sampling rate, noise multiplier) of the DP rounds of a ledger from
  // before data sets had names: charged to every data set.
  std::vector<std::pair<double, double>> unnamed_dp_steps_;
  // The DP rounds trained, per data set name.
  std::map<std::string, std::vector<std::pair<double, double>>> dp_steps_;
};

}  // namespace samverka::client
