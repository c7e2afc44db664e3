// coordinator/coordinator.h
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
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/task.h"
#include "coordinator/coordinator_options.h"
#include "coordinator/federation/federation_state.h"
#include "coordinator/state_store.h"
#include "coordinator/studies/study_run.h"

namespace samverka::coordinator {

// A snapshot for `samverka status`.
struct CoordinatorStatus {
  std::string federation_id;
  std::string active_study;  // standing federations: the study training now
  int64_t next_round = 0;
  int rounds = 0;
  bool done = false;
  std::vector<ClientInfo> clients;
  std::vector<RoundRecord> recent_rounds;
  std::vector<TaskRefusal> refusals;  // the most recent, newest last
};

// What the long-poll returns.
struct PollResult {
  std::optional<ClientTask> task;
  bool federation_done = false;
};

// A study as `samverka study show` prints it.
struct StudyDetails {
  StudyRecord record;
  std::vector<RoundRecord> rounds;  // newest first
  std::set<std::string> sites;      // took part in a committed round
  std::vector<TaskRefusal> refusals;
  double epsilon = 0;
  // A statistics study that released: the statistics (JSON).
  std::string statistics_json;
};

// A study an operator submits: the signed envelope and the model file.
struct StudySubmission {
  std::string manifest;
  std::string model_sha256;
  int64_t submitted_unix_ms = 0;
  std::string nonce;
  std::string operator_certificate;
  std::string signature;
  std::string model_file;  // the TorchScript file's bytes, if any
};

// The coordinator: the federation (sites, liveness, open tasks;
// FederationState) and its studies (StudyRun). A single-run coordinator
// (coordinator.toml names a study) runs that study and ends; a standing one
// runs submitted studies one after another until stopped. The gRPC service
// is a thin adapter over the public methods, which are thread-safe and
// never block longer than the time they are given.
class Coordinator {
 public:
  // Opens the state store; a single-run coordinator restores its study's
  // newest checkpoint or builds the initial model. kInvalidArgument for
  // bad options.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(CoordinatorOptions options);
  ~Coordinator();

  // --- called by the service on behalf of an authenticated site ---
  // `datasets`: the site's named data sets (a standing federation's).
  absl::Status Register(const std::string& client, int64_t train_samples, int64_t eval_samples,
                        std::map<std::string, SiteDataset> datasets = {});
  // What a single-run federation trains, as sites are told when they
  // register (empty for a standing federation: each study says).
  FederationModel model_spec() const;
  // OK if a site with `offer` can train the single-run federation's model.
  // Otherwise logs and audits the refusal, lists it in Status(), takes the
  // site out of selection, and returns kFailedPrecondition saying why.
  absl::Status CheckSite(const std::string& client, const SiteOffer& offer);
  // Waits up to `wait` (capped at max_poll) for work. kNotFound if the
  // client is not registered.
  absl::StatusOr<PollResult> PollTask(const std::string& client, absl::Duration wait);
  // The encoded model with this digest, if the running study holds it.
  absl::StatusOr<std::shared_ptr<const std::string>> Model(const std::string& digest);
  // The model `client` may download: only the one its open task starts
  // from; kFailedPrecondition otherwise.
  absl::StatusOr<std::shared_ptr<const std::string>> ModelToDownload(const std::string& client,
                                                                     const std::string& digest);
  // Checks that `client` may send this result, so that the service can
  // refuse an upload before reading it.
  absl::Status ExpectResult(const std::string& client, const TaskOutcome& outcome);
  // A finished task (see StudyRun::SubmitResult).
  absl::Status SubmitResult(const std::string& client, const TaskOutcome& outcome,
                            ReceivedUpdate received = {});
  // Secure aggregation messages of `client`'s open task.
  absl::Status SecAggSend(const std::string& client, const std::string& task_id, SecureStage stage,
                          std::string_view payload);
  absl::StatusOr<std::optional<std::string>> SecAggFetch(const std::string& client,
                                                          const std::string& task_id,
                                                          SecureStage stage, absl::Duration wait);
  // Notes that `client` is alive (e.g. waiting for a download slot).
  void Touch(const std::string& client);
  // Keeps a training client alive; false if its task is no longer wanted.
  bool Heartbeat(const std::string& client, const std::string& task_id);
  // Records that a site refused or could not run a task; with
  // `refuses_study`, the site is not offered that study again.
  void ReportTaskFailure(const std::string& client, const std::string& task_id,
                         const std::string& reason, bool refuses_study = false);
  // The signed study `id` for a registered site; kNotFound if unknown.
  absl::StatusOr<StudyRecord> StudyForSite(const std::string& client, const std::string& id);
  // The TorchScript file of a study, by SHA-256, for a registered site.
  absl::StatusOr<std::shared_ptr<const std::string>> ModelFile(const std::string& client,
                                                               const std::string& sha256);
  CoordinatorStatus Status();
  bool AuditRefusal(const std::string& peer, const std::string& reason);

  // --- called by the service on behalf of an operator ---
  // Verifies the operator's signature (against the federation CA), reads
  // the manifest with strict keys, checks the model file (its digest, and
  // that it builds the model in a samverka-torch child) and stores the
  // study as queued. Nothing is stored if any check fails:
  // kInvalidArgument / kUnauthenticated naming what is wrong.
  absl::StatusOr<StudyRecord> SubmitStudy(StudySubmission submission);
  absl::StatusOr<std::vector<StudyRecord>> Studies();
  absl::StatusOr<StudyDetails> ShowStudy(const std::string& id);
  // Aborts a queued or running study; kFailedPrecondition if it ended.
  absl::StatusOr<std::string> AbortStudy(const std::string& id, const std::string& by);
  // The study's model after `round` (0: its last committed round).
  absl::StatusOr<Checkpoint> ExportModel(const std::string& id, int64_t round);
  // The study's metrics.jsonl rows.
  absl::StatusOr<std::vector<std::string>> StudyMetrics(const std::string& id);
  // Data set names sites have registered since the coordinator started.
  std::set<std::string> KnownDatasets();
  // The running statistics study's vector size in bytes (bounds a site's
  // masked input); 0 if the running study trains.
  uint64_t StatisticsVectorBytes();

  // Runs the single-run federation's rounds, or a standing federation's
  // studies until Stop(). An error only for failures of the coordinator
  // itself (e.g. disk).
  absl::Status Run();
  void Stop();
  // After a single-run Run: kFailedPrecondition if no round succeeded.
  absl::Status TrainingOutcome();
  // After a single-run Run: waits until every online site has been told
  // the federation is done, at most `timeout`.
  void WaitUntilSitesToldDone(absl::Duration timeout);

  const CoordinatorOptions& options() const { return options_; }

 private:
  Coordinator(CoordinatorOptions options, std::unique_ptr<StateStore> store);
  // The running study, if `task` is one of its tasks.
  ActiveStudy* StudyOf(const ClientTask& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_.mutex);
  absl::Status CheckResultLocked(const std::string& client, const TaskOutcome& outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_.mutex);
  absl::StatusOr<std::shared_ptr<SecureRound>> SecureRoundOf(const std::string& client,
                                                             const std::string& task_id);
  // Runs studies one after another (standing federation).
  absl::Status RunStudies();
  // Starts study `record` (kFailedPrecondition-style errors mark it failed).
  absl::StatusOr<std::shared_ptr<ActiveStudy>> StartStudy(const StudyRecord& record);
  std::string StudyDir(const std::string& id) const;
  std::string ModelFilePath(const std::string& sha256) const;

  const CoordinatorOptions options_;
  FederationState federation_;
  // The running study (the single-run one, or a standing federation's
  // current study); service threads hold a reference while they use it.
  std::shared_ptr<ActiveStudy> active_ ABSL_GUARDED_BY(federation_.mutex);
  std::set<std::string> told_done_ ABSL_GUARDED_BY(federation_.mutex);
  bool done_ ABSL_GUARDED_BY(federation_.mutex) = false;
  // A study was submitted or aborted: the scheduler looks again.
  bool studies_changed_ ABSL_GUARDED_BY(federation_.mutex) = false;
  std::set<std::string> known_datasets_ ABSL_GUARDED_BY(federation_.mutex);
  // The columns sites registered per data set (their tables' headers).
  std::map<std::string, std::set<std::string>> known_columns_ ABSL_GUARDED_BY(federation_.mutex);
};

}  // namespace samverka::coordinator
