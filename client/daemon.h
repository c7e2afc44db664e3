// client/daemon.h
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/datasets/registry.h"
#include "client/secure_aggregation.h"
#include "client/site_policy.h"
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
  // Local data; `data.test_fraction` is held out for federated evaluation.
  DatasetOptions data;
  // A TorchScript file the site holds, for tasks naming a non-built-in model.
  std::string model_file;
  absl::Duration poll_wait = absl::Seconds(15);
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(30);
  uint64_t seed = 0;
  // The site's own rules (refusals are logged here and reported, no data).
  SitePolicy policy;
  // Refuse secure rounds with fewer sites than this (>= 3).
  int secagg_min_clients = 3;
  // Where the daemon keeps its policy ledger (site-ledger.json).
  std::string state_dir;

  absl::Status Validate() const;
};

// Reads client.toml (relative paths resolved against the file's directory).
// Unknown keys and wrong types are errors naming key and file.
absl::StatusOr<ClientDaemonOptions> LoadClientConfig(const std::string& path);

// The client daemon: registers with the coordinator, long-polls for tasks,
// downloads the model in chunks and checks its SHA-256, trains or evaluates
// on local data, and uploads the result in chunks. Retries with exponential
// backoff and jitter, rides out coordinator restarts, and sends heartbeats
// while training. Its log says what left the site (round, bytes, digest),
// never data. Run() on one thread; Stop() from any thread.
class ClientDaemon {
 public:
  // Loads the local data and TLS material; errors name the file.
  static absl::StatusOr<std::unique_ptr<ClientDaemon>> Create(ClientDaemonOptions options);
  ~ClientDaemon();

  // Works until the federation is done (OK) or Stop() is called (OK).
  // kFailedPrecondition when the site cannot serve the federation's model
  // (the message names the data file and what does not fit) or the
  // coordinator refused it: retrying would not help.
  absl::Status Run();
  // Cancels the current call and makes Run() return soon.
  void Stop();

 private:
  ClientDaemon(ClientDaemonOptions options, DatasetSplit data);
  absl::Status Connect();
  // Registers after checking that the local data and model file serve the
  // federation's model (the coordinator's shape, classes and labels).
  // kFailedPrecondition, naming the data file and what does not fit, when
  // they do not: the daemon then stops, since retrying cannot help.
  absl::Status Register();
  absl::Status CallRegister(const SiteOffer& offer, bool check_only,
                            v1::RegisterResponse* response);
  // Fits data_ to `model` and builds it; `coordinator_reason` says why not
  // in the words the coordinator may hear (no file or label names).
  absl::Status CheckCanServe(const FederationModel& model, std::string* coordinator_reason);
  // The local data for messages: the CSV file and label column, or the
  // IDX data set and its directory.
  std::string DataSource() const;
  absl::StatusOr<v1::PollTaskResponse> Poll();
  absl::Status Execute(const ClientTask& task);
  // A consent task: releases this site's consent seed of a stored secure
  // sum if its ledger allows it (else reports the refusal).
  absl::Status ExecuteConsent(const ClientTask& task,
                              const security::secagg::ContributionScope& scope);
  // One heartbeat for `task_id`: whether the coordinator still wants the
  // task, nullopt if the call failed.
  std::optional<bool> SendHeartbeat(const std::string& task_id);
  absl::StatusOr<std::string> Download(const std::string& digest);
  absl::Status Upload(const TaskOutcome& outcome, const std::string& failure_reason);
  // The secure-aggregation calls of `task`, for SecureAggregationSession.
  absl::Status SecAggSend(const ClientTask& task, SecureStage stage, std::string payload);
  absl::StatusOr<std::string> SecAggFetch(const ClientTask& task, SecureStage stage);
  // The model `name` (a built-in, or the site's model_file by file name),
  // built once for the data's shape and classes.
  absl::StatusOr<models::Model*> ModelFor(const std::string& name);
  // Sleeps for the current backoff (or until Stop) and doubles it.
  void Backoff(const absl::Status& why);
  // A context with a deadline, registered so Stop() can cancel it.
  // `wait_for_connection`: the call waits (within `timeout`) for the channel
  // to connect instead of failing at once while it is in backoff.
  std::unique_ptr<grpc::ClientContext> NewContext(absl::Duration timeout,
                                                  bool wait_for_connection = true);
  void Forget(grpc::ClientContext* context);

  const ClientDaemonOptions options_;
  DatasetSplit data_;
  // The site's certificate, key and CA, for signing secure-aggregation keys.
  SecureSiteOptions site_;
  std::optional<SitePolicyEnforcer> policy_;
  std::unique_ptr<security::secagg::ConsentLedger> ledger_;
  TaskHandler handler_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Federation::Stub> stub_;
  // The same coordinator over a connection used for heartbeats only.
  std::unique_ptr<v1::Federation::Stub> heartbeat_stub_;
  std::map<std::string, std::unique_ptr<models::Model>> models_;
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
