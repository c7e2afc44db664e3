// coordinator/studies/study_run.h
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "common/task.h"
#include "coordinator/coordinator_options.h"
#include "coordinator/federation/federation_state.h"
#include "coordinator/round_engine.h"
#include "coordinator/sealed_sum_store.h"
#include "coordinator/secure_round.h"
#include "coordinator/state_store.h"
#include "coordinator/studies/active_study.h"
#include "security/dp/dp.h"

namespace samverka::coordinator {

// Where one study keeps what is its own, and which sites serve it.
struct StudySetup {
  // Empty for the single study of a coordinator.toml that still names one.
  std::string id;
  // The data set its sites must name; empty: every site (single-run).
  std::string dataset;
  // The study's options on top of the federation's.
  CoordinatorOptions options;
  // Its view of the state database (rounds, checkpoints).
  std::unique_ptr<StateStore> store;
  // Its folder: metrics.jsonl / metrics.csv and sealed/.
  std::string dir;
  // The model as tasks name it: the manifest's string (a TorchScript
  // file's name, not where the coordinator keeps it). Empty: options.model.
  std::string task_model;
};

// One study's training: the round loop around RoundEngine (training,
// secure rounds, federated evaluation, the test set), its strategy, DP,
// metrics and checkpoints. It runs on the federation (sites, liveness, the
// open tasks), under the federation's mutex; the Coordinator routes the
// sites' calls for its tasks here.
class StudyRun final : public ActiveStudy {
 public:
  // Restores the study's newest checkpoint or builds its initial model (in
  // a samverka-torch child). kInvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<StudyRun>> Create(StudySetup setup,
                                                          FederationState* federation);
  ~StudyRun() override;

  const std::string& id() const override { return id_; }
  int rounds() const override { return options_.rounds; }
  const std::string& dataset() const { return dataset_; }
  const CoordinatorOptions& options() const { return options_; }
  // The study's view of the state database.
  StateStore& store() override { return *store_; }

  // Runs rounds until `rounds` have completed, the federation stops or the
  // study is aborted. An error only for failures of the coordinator itself.
  absl::Status Run() override;
  // After Run: true if every round ran (not stopped or aborted).
  bool finished() const override;
  // After Run: why no site can serve the study (every site that names its
  // data set refused it); empty otherwise.
  std::string unserved() const override;
  // After a finished Run: kFailedPrecondition if no round succeeded.
  absl::Status Outcome() override;
  // Ends the study after its current wait (its open tasks are dropped).
  void Abort() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);

  // --- under the federation's mutex ---
  // Whether `site` serves this study (it names the data set, with training
  // samples, and has not refused the study), and adds it to selection.
  bool Serves(const ClientInfo& site) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  void AddSite(const std::string& site) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  // `site` refused the study (its policy): it is not selected again.
  void SiteRefused(const std::string& site) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  void OnSiteOffline(const std::string& site) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  void OnTaskLost(const std::string& site, const ClientTask& task,
                  const std::string& reason) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  // A training task the site itself failed: it sits out the next 1, 2, 4,
  // 8 or 16 rounds (doubling with each failure in a row), unless needed.
  void NoteTrainingFailure(const std::string& site, int64_t round) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  // A consent task waiting for `site` (after a restart), handed out once.
  std::optional<ClientTask> TakeConsentTask(const std::string& site) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  // The encoded model with this digest, if the study still holds it.
  std::shared_ptr<const std::string> FindModel(const std::string& digest) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  // The result checks of Coordinator::ExpectResult for a task of this study.
  absl::Status CheckResult(const std::string& site, const ClientTask& task,
                           const TaskOutcome& outcome) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  std::shared_ptr<SecureRound> secure_round() const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex) { return secure_; }
  int64_t next_round() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);

  // --- without the lock ---
  // A result that CheckResult accepted (see Coordinator::SubmitResult).
  absl::Status SubmitResult(const std::string& site, const TaskOutcome& outcome,
                            ReceivedUpdate received) override;

 private:
  struct EvalAccumulator {
    std::set<std::string> expected;
    std::set<std::string> answered;
    double samples = 0, loss = 0, accuracy = 0, auc_weight = 0, auc = 0;
  };
  struct SittingOut {
    int failures = 0;
    int64_t until_round = 0;
  };

  StudyRun(StudySetup setup, FederationState* federation);
  absl::Status Initialise();
  absl::Status AppendMetricsRow(const RoundRecord& record);
  absl::Status RunRound();
  // A task id unique across studies ("<study>-round-3-train").
  std::string TaskId(const std::string& name) const;
  // Samples a site holds for this study's data set.
  SiteDataset SamplesOf(const std::string& site) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  void Assign(const std::vector<std::string>& sites, const ClientTask& task)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  // Drops this study's open tasks (the round is over).
  void EndOpenTasks(const std::function<bool(const ClientTask&)>& which)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  absl::StatusOr<std::map<std::string, double>> EvaluateOnTestSet(const std::string& encoded_model);
  absl::StatusOr<std::shared_ptr<SecureRound>> StartSecureRound(const RoundPlan& plan)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);
  absl::StatusOr<bool> ResumeSealedRound(RoundPlan* plan, RoundRecord* record,
                                         std::shared_ptr<SecureRound>* secure);
  std::string FinishSecureRound(const RoundPlan& plan, SecureRound* secure,
                                std::optional<double>* epsilon);
  bool stopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex) {
    return federation_->stop || aborted_ || !unserved_.empty();
  }
  // WaitFor that also ends on Abort.
  bool WaitFor(std::function<bool()> done, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex);

  const std::string id_;
  const std::string dataset_;
  const CoordinatorOptions options_;
  std::unique_ptr<StateStore> store_;
  const std::string dir_;
  const std::string task_model_;
  FederationState* const federation_;
  std::unique_ptr<SealedSumStore> sealed_store_;
  std::unique_ptr<RoundEngine> engine_;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<security::dp::DpFedAvgServer> dp_;  // null when DP is off

  std::map<std::string, std::shared_ptr<const std::string>> models_
      ABSL_GUARDED_BY(federation_->mutex);
  std::map<std::string, ClientTask> consent_tasks_ ABSL_GUARDED_BY(federation_->mutex);
  std::optional<EvalAccumulator> eval_ ABSL_GUARDED_BY(federation_->mutex);
  std::shared_ptr<SecureRound> secure_ ABSL_GUARDED_BY(federation_->mutex);
  std::set<std::string> refused_ ABSL_GUARDED_BY(federation_->mutex);
  std::map<std::string, SittingOut> sitting_out_ ABSL_GUARDED_BY(federation_->mutex);
  bool started_ ABSL_GUARDED_BY(federation_->mutex) = false;
  bool finished_ ABSL_GUARDED_BY(federation_->mutex) = false;
  bool aborted_ ABSL_GUARDED_BY(federation_->mutex) = false;
  std::string unserved_ ABSL_GUARDED_BY(federation_->mutex);
  int failed_in_a_row_ = 0;  // Run's thread only
};

}  // namespace samverka::coordinator
