// client/daemon.h
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/datasets/registry.h"
#include "client/secure_aggregation.h"
#include "client/site_policy.h"
#include "client/study_check.h"
#include "client/task_handler.h"
#include "models/model.h"
#include "proto/federation.grpc.pb.h"
#include "security/tls.h"

namespace samverka::client {

// What a site's daemon needs (client.toml; see docs/configuration.md).
struct ClientDaemonOptions {
  // host:port of the coordinator; the daemon only ever dials out.
  std::string coordinator;
  // Name to check the coordinator's certificate against when it differs
  // from the host in `coordinator` (optional).
  std::string server_name;
  security::TlsFiles tls;
  // The CA's revocation list (tls.crl), checked for every study's signer;
  // empty: none (a revoked operator's studies are then still taken).
  std::string crl;
  // The site's data sets by name ([datasets]); each spec's test_fraction is
  // held out for federated evaluation. Studies name the one they need; a
  // data set is read only once a study that needs it passed the policy.
  std::map<std::string, DatasetOptions> datasets;
  // Operators (certificate names) whose signed studies this site takes;
  // empty: any operator certificate of the federation CA.
  std::vector<std::string> allowed_operators;
  absl::Duration poll_wait = absl::Seconds(15);
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(30);
  uint64_t seed = 0;
  // The site's own rules (refusals are logged here and reported, no data).
  SitePolicy policy;
  // Refuse secure rounds with fewer sites than this (>= 3).
  int secagg_min_clients = 3;
  // Where the daemon keeps its policy ledger (site-ledger.json), its
  // consent ledger and the models studies bring (models/<sha256>.pt).
  std::string state_dir;

  absl::Status Validate() const;
};

// Reads client.toml (relative paths resolved against the file's directory,
// CSV paths in [datasets] too). Unknown keys, wrong types and bad data set
// names or specs are errors naming key and file; no data file is opened.
absl::StatusOr<ClientDaemonOptions> LoadClientConfig(const std::string& path);

// The client daemon: registers with the coordinator (naming its data sets,
// never sending data), long-polls for tasks, and for each task of a study
// fetches the signed study and decides by its own policy whether to take
// part (client/study_check.h) before it reads any data; then downloads the
// model (and a study's TorchScript file, by digest) in chunks and checks
// their SHA-256, trains or evaluates on the study's data set, and uploads
// the result in chunks. Retries with exponential backoff and jitter, rides
// out coordinator restarts, and sends heartbeats while training. Its log
// says what left the site (round, bytes, digest) and why a study was
// refused, never data. Run() on one thread; Stop() from any thread.
class ClientDaemon {
 public:
  // Reads the TLS material and the ledgers; errors name the file. Reads no
  // data set.
  static absl::StatusOr<std::unique_ptr<ClientDaemon>> Create(ClientDaemonOptions options);
  ~ClientDaemon();

  // Works until Stop() is called (OK): a standing federation runs study
  // after study. kFailedPrecondition when the coordinator refused the site
  // or (a coordinator that predates studies) the site cannot serve its
  // model: retrying would not help.
  absl::Status Run();
  // Cancels the current call and makes Run() return soon.
  void Stop();

 private:
  // One of the site's data sets, read when a study first needs it and kept
  // fitted to one study model (shape, classes, labels).
  struct SiteDataset {
    DatasetOptions options;
    std::optional<DatasetSplit> data;
    FederationModel fitted_for;
    std::unique_ptr<TaskHandler> handler;
  };

  explicit ClientDaemon(ClientDaemonOptions options);
  absl::Status Connect();
  // Registers, naming the site's data sets. With a coordinator that
  // predates studies (its response names one model), first checks that the
  // site's one data set serves that model; kFailedPrecondition, naming the
  // data file and what does not fit, when it does not: the daemon then
  // stops, since retrying cannot help.
  absl::Status Register();
  absl::Status CallRegister(const SiteOffer& offer, bool check_only,
                            v1::RegisterResponse* response);
  // Reads data set `name` if needed and fits it to `model`; `coordinator_reason`
  // says why not in the words the coordinator may hear (no file or label names).
  absl::StatusOr<SiteDataset*> DatasetFor(const std::string& name, const FederationModel& model,
                                          std::string* coordinator_reason);
  // Data set `name` for messages: the CSV file and label column, or the
  // IDX data set and its directory.
  std::string DataSource(const std::string& name) const;
  absl::StatusOr<v1::PollTaskResponse> Poll();
  // The verified study `id`, fetched with GetStudy once and cached. A
  // refusal (kUnauthenticated, kPermissionDenied, kInvalidArgument) is
  // cached too, except one for this site's own expired CRL; a failed call
  // or an unreadable CRL is kUnavailable and not cached (the next task asks
  // again).
  absl::StatusOr<const VerifiedStudy*> StudyFor(const std::string& id);
  absl::StatusOr<FetchedStudy> FetchStudy(const std::string& id);
  // STATE_DIR/models/<sha>.pt, downloaded by digest if absent (temp file,
  // SHA-256 checked, rename) and checked once per run if present.
  absl::StatusOr<std::string> ModelFile(const VerifiedStudy& study);
  absl::Status Execute(const ClientTask& task);
  // Tells the coordinator the task was not run and logs why.
  absl::Status Refuse(const ClientTask& task, const std::string& reason);
  // The same for a study's task: "refused study ID: <why>".
  // `whole_study`: the coordinator is told not to offer the study again.
  absl::Status RefuseStudy(const ClientTask& task, const absl::Status& why,
                           bool whole_study = false);
  // A consent task: releases this site's consent seed of a stored secure
  // sum if its ledger allows it (else reports the refusal).
  absl::Status ExecuteConsent(const ClientTask& task,
                              const security::secagg::ContributionScope& scope);
  // A statistics task of `study` (client/daemon_statistics.cc): computes
  // the site's vector on data set `dataset` and sends it only masked.
  absl::Status ExecuteStatistics(const ClientTask& task, const VerifiedStudy& study,
                                 const std::string& dataset,
                                 const security::secagg::ContributionScope& scope);
  // One heartbeat for `task_id`: whether the coordinator still wants the
  // task, nullopt if the call failed.
  std::optional<bool> SendHeartbeat(const std::string& task_id);
  absl::StatusOr<std::string> Download(const std::string& digest);
  // A chunked download into memory, at most `max_bytes`.
  absl::StatusOr<std::string> ReadChunks(grpc::ClientContext* context,
                                         grpc::ClientReader<v1::TensorChunk>* reader,
                                         uint64_t max_bytes);
  absl::Status Upload(const TaskOutcome& outcome, const std::string& failure_reason,
                      bool refuses_study = false);
  // The secure-aggregation calls of `task` (SecAggSend, SecAggFetch, a
  // masked Upload), for SecureAggregationSession.
  CallbackTransport TransportFor(const ClientTask& task);
  // The secure-aggregation calls of `task`, for SecureAggregationSession.
  absl::Status SecAggSend(const ClientTask& task, SecureStage stage, std::string payload);
  absl::StatusOr<std::string> SecAggFetch(const ClientTask& task, SecureStage stage);
  // The model `source` (a built-in name or a TorchScript file), built once
  // for the shape and classes data set `dataset` is fitted to.
  absl::StatusOr<models::Model*> ModelFor(const std::string& source, const std::string& dataset);
  // Sleeps for the current backoff (or until Stop) and doubles it.
  void Backoff(const absl::Status& why);
  // A context with a deadline, registered so Stop() can cancel it.
  // `wait_for_connection`: the call waits (within `timeout`) for the channel
  // to connect instead of failing at once while it is in backoff.
  std::unique_ptr<grpc::ClientContext> NewContext(absl::Duration timeout,
                                                  bool wait_for_connection = true);
  void Forget(grpc::ClientContext* context);

  const ClientDaemonOptions options_;
  std::map<std::string, SiteDataset> datasets_;
  // The names of datasets_, for the policy.
  std::set<std::string> dataset_names_;
  // Training and evaluation samples of each data set, counted at start.
  std::map<std::string, std::pair<int64_t, int64_t>> dataset_counts_;
  // The column names of each CSV data set (its header), read at start.
  std::map<std::string, std::vector<std::string>> dataset_columns_;
  // A coordinator that predates studies: the model it named at
  // registration and the site's one data set it trains.
  std::optional<FederationModel> legacy_model_;
  std::string legacy_dataset_;
  // Studies verified, and those refused (why), by id.
  std::map<std::string, VerifiedStudy> studies_;
  std::map<std::string, absl::Status> refused_studies_;
  // Model files whose digest was checked in this run.
  std::set<std::string> checked_model_files_;
  // The site's certificate, key and CA, for signing secure-aggregation keys.
  SecureSiteOptions site_;
  std::optional<SitePolicyEnforcer> policy_;
  std::unique_ptr<security::secagg::ConsentLedger> ledger_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Federation::Stub> stub_;
  // The same coordinator over a connection used for heartbeats only.
  std::unique_ptr<v1::Federation::Stub> heartbeat_stub_;
  // Built models, by data set and source.
  std::map<std::pair<std::string, std::string>, std::unique_ptr<models::Model>> models_;
  absl::Duration backoff_;
  absl::Duration heartbeat_interval_ = absl::Seconds(5);
  bool registered_ = false;
  std::string last_error_;
  // An exclusive lock on state_dir/client.lock, held while the daemon runs.
  int state_lock_ = -1;
  uint64_t jitter_state_;

  absl::Notification stop_;
  absl::Mutex mutex_;
  std::set<grpc::ClientContext*> live_contexts_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace samverka::client
