// coordinator/studies/statistics_run.h
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "coordinator/coordinator_options.h"
#include "coordinator/federation/federation_state.h"
#include "coordinator/sealed_sum_store.h"
#include "coordinator/secure_round.h"
#include "coordinator/state_store.h"
#include "coordinator/studies/active_study.h"
#include "statistics/spec.h"

namespace samverka::coordinator {

// What a statistics study needs besides the federation.
struct StatisticsSetup {
  std::string id;
  std::string dataset;
  // The study's options on top of the federation's (cohort, deadlines,
  // SecAgg+ parameters).
  CoordinatorOptions options;
  statistics::StatisticsSpec spec;
  // SHA-256 of the signed manifest: what every task names in place of a
  // model, and what each site's consent ledger allows one sum of.
  std::string manifest_digest;
  // DP (spec.dp()): the delta epsilon is reported at, and the fewest
  // contributors the sites sized their noise for (a smaller sum is not
  // released).
  double dp_delta = 1e-5;
  int dp_sites = 3;
  std::unique_ptr<StateStore> store;
  std::string dir;  // sealed/
};

// One statistics study (kind = "statistics", docs/statistics.md): every
// site that names its data set computes the study's vector of counts and
// fixed-point sums (statistics/site_statistics.h) and sends it masked; one
// SecAgg+ round over Z_2^64 (the protocol, dropout handling, sealing and
// consent of training) sums them, and the coordinator learns only the sum.
// Summarise turns it into the released statistics, with small counts
// suppressed, which the study commits as its round 1 (its "checkpoint" is
// that JSON: `samverka study show` and `export` read it from there).
class StatisticsRun final : public ActiveStudy {
 public:
  static absl::StatusOr<std::unique_ptr<StatisticsRun>> Create(StatisticsSetup setup,
                                                               FederationState* federation);
  ~StatisticsRun() override;

  const std::string& id() const override { return id_; }
  int rounds() const override { return 1; }
  StateStore& store() override { return *store_; }
  absl::Status Run() override;
  bool finished() const override;
  std::string unserved() const override;
  absl::Status Outcome() override;
  // Bytes of one site's vector (8 per element).
  uint64_t statistics_vector_bytes() const override { return 8 * length_; }

  void Abort() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  void AddSite(const std::string&) override {}
  void SiteRefused(const std::string& site) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  void NoteTrainingFailure(const std::string&, int64_t) override {}
  std::optional<ClientTask> TakeConsentTask(const std::string& site) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  std::shared_ptr<const std::string> FindModel(const std::string&) const override {
    return nullptr;
  }
  absl::Status CheckResult(const std::string& site, const ClientTask& task,
                           const TaskOutcome& outcome) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  std::shared_ptr<SecureRound> secure_round() const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex) { return secure_; }
  int64_t next_round() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex) {
    return finished_ ? 2 : 1;
  }
  absl::Status SubmitResult(const std::string& site, const TaskOutcome& outcome,
                            ReceivedUpdate received) override;
  void OnSiteOffline(const std::string&) override {}
  void OnTaskLost(const std::string& site, const ClientTask& task,
                  const std::string& reason) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);

 private:
  StatisticsRun(StatisticsSetup setup, FederationState* federation);
  // Whether `site` can be in the cohort: online, names the data set, has
  // not refused the study.
  bool Serves(const ClientInfo& site) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  struct Released {
    std::string json;  // statistics::Summarise's, with study, dataset, contributors
    std::vector<std::string> contributors;
    std::optional<double> epsilon;  // with DP
  };
  SecureRound::Setup MakeSetup(const std::vector<std::string>& cohort);
  ClientTask MakeTask(TaskKind kind, int cohort_size) const;
  // Creates the secure round over `cohort` and hands out its tasks.
  absl::StatusOr<std::shared_ptr<SecureRound>> StartRound(const std::vector<std::string>& cohort);
  // The round of a sum sealed before a restart, at its consent stage (null
  // if there is none); the outer status for the coordinator's own failures.
  absl::StatusOr<absl::StatusOr<std::shared_ptr<SecureRound>>> ResumeSealed();
  // Runs `secure` to its end and summarises the sum.
  absl::StatusOr<Released> Release(SecureRound* secure);
  void EndOpenTasks() ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  bool stopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex) {
    return federation_->stop || aborted_ || !unserved_.empty();
  }

  const std::string id_;
  const std::string dataset_;
  const CoordinatorOptions options_;
  const statistics::StatisticsSpec spec_;
  const std::string digest_;
  const double dp_delta_;
  const int dp_sites_;
  const uint64_t length_;
  std::unique_ptr<StateStore> store_;
  const std::string dir_;
  FederationState* const federation_;
  std::unique_ptr<SealedSumStore> sealed_store_;

  std::shared_ptr<SecureRound> secure_ ABSL_GUARDED_BY(federation_->mutex);
  std::set<std::string> refused_ ABSL_GUARDED_BY(federation_->mutex);
  std::map<std::string, ClientTask> consent_tasks_ ABSL_GUARDED_BY(federation_->mutex);
  bool finished_ ABSL_GUARDED_BY(federation_->mutex) = false;
  bool aborted_ ABSL_GUARDED_BY(federation_->mutex) = false;
  std::string unserved_ ABSL_GUARDED_BY(federation_->mutex);
  std::string failure_;  // Run's thread only
};

}  // namespace samverka::coordinator
