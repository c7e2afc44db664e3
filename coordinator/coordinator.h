// coordinator/coordinator.h
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "common/task.h"
#include "coordinator/federation/liveness.h"
#include "coordinator/federation/repeat_filter.h"
#include "coordinator/round_engine.h"
#include "coordinator/sealed_sum_store.h"
#include "coordinator/secure_round.h"
#include "security/dp/dp.h"
#include "coordinator/state_store.h"
#include "coordinator/strategy.h"

namespace samverka::coordinator {

// Everything a coordinator needs to run a federation (coordinator.toml;
// see docs/configuration.md).
struct CoordinatorOptions {
  std::string federation_id;
  // Built-in architecture or TorchScript file, and the data it takes.
  std::string model = "mlp";
  std::vector<int64_t> input_shape;
  int64_t num_classes = 0;
  // Optional names of the classes in class-id order (num_classes of them),
  // so sites map label names in their data to the same ids.
  std::vector<std::string> class_labels;
  int rounds = 10;
  // After a failed round the next one waits this long, doubling with each
  // failure in a row up to max_failed_round_backoff, so failing rounds do
  // not burn the federation's rounds in seconds.
  absl::Duration failed_round_backoff = absl::Seconds(1);
  absl::Duration max_failed_round_backoff = absl::Seconds(60);
  RoundOptions round;
  // Sites to wait for before this process runs its first round (0:
  // round.min_clients), so a consortium starts with everyone.
  int wait_for_clients = 0;
  // How updates combine (fedavg, fedadam, median, ...). A robust strategy
  // needs min_clients > 2 * krum_byzantine + 2 for krum and no secure
  // aggregation.
  StrategyOptions strategy;
  // Federated evaluation of each new model on the participants' held-out data.
  bool federated_evaluation = true;
  absl::Duration eval_deadline = absl::Seconds(60);
  // Clients send a heartbeat at this interval while they train; a client
  // silent for three intervals is taken for dead.
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // Longest a PollTask call is held open.
  absl::Duration max_poll = absl::Seconds(20);
  // Uploads received and decoded at the same time; the others wait (gRPC
  // flow control holds their senders back). Each one costs about twice the
  // encoded model in memory, so this bounds the coordinator's peak.
  int max_concurrent_uploads = 2;
  // Model downloads streamed at the same time; the others wait.
  int max_concurrent_downloads = 8;
  // The most training (or evaluation) samples one site may register: its
  // weight in FedAvg is its sample count, so this bounds one site's say.
  int64_t max_samples_per_site = 1'000'000'000;
  // A model download or upload with no chunk moving for this long is cut
  // (it holds a slot others wait for).
  absl::Duration transfer_stall = absl::Seconds(60);
  uint64_t seed = 0;
  std::string state_dir;
  // Optional test set evaluated at the coordinator after each round, as a
  // data set spec (csv:PATH:LABEL or an IDX data set; the whole of it is the
  // test set). Loaded and evaluated by a `samverka-torch model evaluate`
  // child, never in this process.
  std::string test_dataset;
  // The samverka-torch executable whose `model` command builds the initial
  // model and evaluates on test_dataset in child processes, so this process
  // never loads LibTorch or a TorchScript file. Empty: samverka-torch next
  // to the running executable.
  std::string model_helper;
  // Secure aggregation (on by default): the coordinator learns only the
  // sum of each round's updates. Needs the federation CA (PEM) to check the
  // keys sites sign, and cohorts of at least 3.
  SecureAggregationOptions secure_aggregation;
  std::string ca_pem;
  // Differential privacy (DP-FedAvg, central: the coordinator adds the
  // noise to the secure sum). dp_population: the sites that could be
  // sampled (q = cohort / population).
  security::dp::DpConfig dp;
  int64_t dp_population = 0;
  // Sites per round as DP accounting assumes it (clients_per_round, or
  // fraction * dp_population, within [min_clients, max_clients]).
  double ExpectedCohort() const;

  absl::Status Validate() const;
};

// A site as the coordinator knows it.
struct ClientInfo {
  std::string name;
  int64_t train_samples = 0;
  int64_t eval_samples = 0;
  absl::Time last_seen;
  bool online = false;
};

// A task a site refused or could not run.
struct TaskRefusal {
  std::string site;
  int64_t round = 0;
  std::string reason;
};

// A snapshot for `samverka status`.
struct CoordinatorStatus {
  std::string federation_id;
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

// A plain update that the service decoded while it streamed in
// (UpdateReceiver): its values, and the size and SHA-256 of its encoding.
struct ReceivedUpdate {
  std::vector<float> values;
  uint64_t bytes = 0;
  std::string digest;
};

// The coordinator: a client registry, the round loop around RoundEngine
// (training, then federated evaluation), persistence through StateStore and
// the audit log. The gRPC service is a thin adapter over the public methods,
// which are thread-safe and never block longer than the time they are given.
class Coordinator {
 public:
  // Restores the newest checkpoint from the state store, or builds the
  // initial model. kInvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(CoordinatorOptions options);
  ~Coordinator();

  // --- called by the service on behalf of an authenticated site ---
  absl::Status Register(const std::string& client, int64_t train_samples, int64_t eval_samples);
  // What the federation trains, as sites are told when they register.
  FederationModel model_spec() const;
  // OK if a site with `offer` can train the model. Otherwise logs and
  // audits the refusal, lists it in Status(), takes the site out of
  // selection if it was online, and returns kFailedPrecondition saying why.
  absl::Status CheckSite(const std::string& client, const SiteOffer& offer);
  // Waits up to `wait` (capped at max_poll) for work. kNotFound if the
  // client is not registered (after a coordinator restart it registers
  // again).
  absl::StatusOr<PollResult> PollTask(const std::string& client, absl::Duration wait);
  // The encoded model with this digest, if it is the current or the
  // previous global model; kNotFound otherwise.
  absl::StatusOr<std::shared_ptr<const std::string>> Model(const std::string& digest);
  // The model `client` may download: only the one its open task (training
  // or evaluation) starts from; kFailedPrecondition otherwise.
  absl::StatusOr<std::shared_ptr<const std::string>> ModelToDownload(const std::string& client,
                                                                     const std::string& digest);
  // Checks that `client` may send this result (its task is open and the
  // result fits it; `outcome.update` is not looked at), so that the service
  // can refuse an upload before reading it. The errors of SubmitResult's
  // first checks.
  absl::Status ExpectResult(const std::string& client, const TaskOutcome& outcome);
  // A finished task: an evaluation's metrics, a masked input in
  // `outcome.update`, or a plain update, which arrives decoded in
  // `received` (its values are freed once absorbed, before the round may
  // close on this thread). Errors as RoundEngine::SubmitUpdate, plus
  // kFailedPrecondition for a task that is no longer open.
  absl::Status SubmitResult(const std::string& client, const TaskOutcome& outcome,
                            ReceivedUpdate received = {});
  // Secure aggregation: a site's message of `stage` for its task, and what
  // it needs for the next stage (nullopt if not ready within `wait`).
  // kFailedPrecondition if the task is not open or not secure; SecureRound's
  // errors otherwise.
  absl::Status SecAggSend(const std::string& client, const std::string& task_id, SecureStage stage,
                          std::string_view payload);
  absl::StatusOr<std::optional<std::string>> SecAggFetch(const std::string& client,
                                                          const std::string& task_id,
                                                          SecureStage stage, absl::Duration wait);
  // Notes that `client` is alive (e.g. waiting for a download slot).
  void Touch(const std::string& client);
  // Keeps a training client alive; false if its task is no longer wanted.
  bool Heartbeat(const std::string& client, const std::string& task_id);
  // Records that a site refused or could not run a task.
  void ReportTaskFailure(const std::string& client, const std::string& task_id,
                         const std::string& reason);
  CoordinatorStatus Status();
  // Audits a refused connection or call (never secrets), once a minute per
  // peer host and reason: true if this one was written (and should be
  // logged); the ones held back are counted into the next row.
  bool AuditRefusal(const std::string& peer, const std::string& reason);
  // Writes the counts of refusals and joins held back whose minute passed.
  void AuditHeldBack(absl::Time now);

  // Runs rounds until `rounds` have completed or Stop() is called. Returns
  // an error only for failures of the coordinator itself (e.g. disk).
  absl::Status Run();
  void Stop();
  // After Run: kFailedPrecondition if the federation finished its rounds
  // without one successful round (no model was trained), else OK.
  absl::Status TrainingOutcome();
  // After Run: waits until every online site has been told the federation
  // is done (so its daemon exits cleanly), at most `timeout`.
  void WaitUntilSitesToldDone(absl::Duration timeout);

  const CoordinatorOptions& options() const { return options_; }

 private:
  struct EvalAccumulator {
    std::set<std::string> expected;
    std::set<std::string> answered;
    double samples = 0, loss = 0, accuracy = 0, auc_weight = 0, auc = 0;
  };

  Coordinator(CoordinatorOptions options, std::unique_ptr<StateStore> store);
  absl::Status Initialise();
  // One row of metrics.jsonl / metrics.csv for `record`.
  absl::Status AppendMetricsRow(const RoundRecord& record);
  absl::Status RunRound();
  void MarkDeadClients(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  bool WaitFor(std::function<bool()> done, absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Assign(const std::vector<std::string>& clients, const ClientTask& task)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // test_loss, test_accuracy (and test_auc) of the SVTB-encoded `model` on
  // options_.test_dataset, from a samverka-torch child.
  absl::StatusOr<std::map<std::string, double>> EvaluateOnTestSet(const std::string& encoded_model);
  // Sets up secure aggregation for `plan`'s cohort (nullptr when off).
  absl::StatusOr<std::shared_ptr<SecureRound>> StartSecureRound(const RoundPlan& plan)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Adds the callbacks that make a secure round's sealed sum and consent
  // seeds durable (sealed_store_, audit log).
  void AddSealing(SecureRound::Setup& setup);
  // If a sealed sum of a round from the current model is stored, opens the
  // next round as its completion (cohort: its contributors; consent tasks
  // to those that have not released it yet) and returns true (with a null
  // `secure` if the coordinator is stopping).
  absl::StatusOr<bool> ResumeSealedRound(RoundPlan* plan, RoundRecord* record,
                                         std::shared_ptr<SecureRound>* secure);
  // Runs the secure round to its end and hands the sum to the engine;
  // returns the abort reason if it aborted (empty otherwise).
  // With DP, sets `epsilon` to the guarantee after this round.
  std::string FinishSecureRound(const RoundPlan& plan, SecureRound* secure,
                                std::optional<double>* epsilon);
  // A training task `client` did not run: it sits out the next 1, 2, 4, 8
  // or 16 rounds (doubling with each failure in a row), unless needed.
  void NoteTrainingFailure(const std::string& client, int64_t round)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // ExpectResult's checks, under mutex_.
  absl::Status CheckResultLocked(const std::string& client, const TaskOutcome& outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The open secure round of `client`'s task `task_id`, refreshing its
  // liveness; kFailedPrecondition if there is none.
  absl::StatusOr<std::shared_ptr<SecureRound>> SecureRoundOf(const std::string& client,
                                                             const std::string& task_id);

  const CoordinatorOptions options_;
  std::unique_ptr<StateStore> store_;
  // Sealed secure sums and consent seeds awaiting their round's commit.
  std::unique_ptr<SealedSumStore> sealed_store_;
  std::unique_ptr<RoundEngine> engine_;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<security::dp::DpFedAvgServer> dp_;  // null when DP is off
  // Signs of life of the registered sites (its own lock, never mutex_).
  SiteLiveness liveness_;
  // Repeated refusals and re-registrations, coalesced in the audit log.
  RepeatFilter refusals_seen_{absl::Minutes(1)};
  RepeatFilter joins_seen_{absl::Minutes(1)};

  absl::Mutex mutex_;
  std::map<std::string, ClientInfo> clients_ ABSL_GUARDED_BY(mutex_);
  // Work handed out and not yet finished, by client.
  std::map<std::string, ClientTask> assigned_ ABSL_GUARDED_BY(mutex_);
  // Consent tasks of a resumed secure round for sites not yet online.
  std::map<std::string, ClientTask> consent_tasks_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::shared_ptr<const std::string>> models_ ABSL_GUARDED_BY(mutex_);
  std::optional<EvalAccumulator> eval_ ABSL_GUARDED_BY(mutex_);
  std::shared_ptr<SecureRound> secure_ ABSL_GUARDED_BY(mutex_);
  std::deque<TaskRefusal> refusals_ ABSL_GUARDED_BY(mutex_);
  bool stop_ ABSL_GUARDED_BY(mutex_) = false;
  bool done_ ABSL_GUARDED_BY(mutex_) = false;
  bool started_ ABSL_GUARDED_BY(mutex_) = false;  // a round has run
  std::set<std::string> told_done_ ABSL_GUARDED_BY(mutex_);
  // Rounds failed in a row (Run's thread only), for the backoff.
  int failed_in_a_row_ = 0;
  // Sites whose training tasks failed in a row: how many, and the last
  // round they sit out (drawn only to reach min_clients). Cleared when the
  // site contributes to a round.
  struct SittingOut {
    int failures = 0;
    int64_t until_round = 0;
  };
  std::map<std::string, SittingOut> sitting_out_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace samverka::coordinator
