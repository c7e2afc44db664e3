#include "client/daemon.h"
#include "client/internal/daemon_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/datasets/model_fit.h"
#include "client/task_heartbeat.h"
#include "common/codec.h"
#include "common/logging.h"
#include "common/model_names.h"
#include "common/peer_text.h"
#include "common/status_macros.h"
#include "common/wire.h"
#include "statistics/site_statistics.h"

namespace samverka::client {
using internal::Retryable;
using internal::Short;
namespace {

// Two daemons sharing a state_dir would overwrite each other's policy
// ledger (the site's budget): the first holds an exclusive lock on
// state_dir/client.lock until it exits (the kernel drops it even after
// kill -9), and a second is refused at start.
absl::StatusOr<int> LockStateDir(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "client.lock").string();
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    close(fd);
    if (error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "another client daemon is running with state_dir ", dir, " (it holds ", path,
          "); give each daemon its own state_dir"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("cannot lock ", path, ": ", std::strerror(error)));
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ClientDaemon>> ClientDaemon::Create(ClientDaemonOptions options) {
  SV_RETURN_IF_ERROR(options.Validate());
  // The site's identity, checked before anything else: a key that does not
  // fit its certificate would only show later as a refused handshake.
  SV_RETURN_IF_ERROR(options.tls.CheckIdentity());
  auto daemon = std::unique_ptr<ClientDaemon>(new ClientDaemon(std::move(options)));
  SecureSiteOptions& site = daemon->site_;
  SV_ASSIGN_OR_RETURN(site.certificate_chain, security::ReadFileToString(daemon->options_.tls.certificate));
  SV_ASSIGN_OR_RETURN(site.ca_pem, security::ReadFileToString(daemon->options_.tls.ca_certificate));
  SV_ASSIGN_OR_RETURN(std::string key, security::ReadFileToString(daemon->options_.tls.private_key));
  site.private_key = security::SecretBytes::CopyFrom(key);
  std::fill(key.begin(), key.end(), '\0');
  site.min_clients = daemon->options_.secagg_min_clients;
  if (!daemon->options_.crl.empty()) {
    // Checked now so a wrong path or a CRL of another CA stops the daemon at
    // start, not at the first study.
    SV_RETURN_IF_ERROR(security::LoadCrl(daemon->options_.crl, site.ca_pem).status());
  }
  if (!daemon->options_.state_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(daemon->options_.state_dir, ec);
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot create state_dir ", daemon->options_.state_dir, ": ", ec.message()));
    }
    SV_ASSIGN_OR_RETURN(daemon->state_lock_, LockStateDir(daemon->options_.state_dir));
  }
  // What this site released of secure sums (one per model and data set).
  SV_ASSIGN_OR_RETURN(daemon->ledger_,
                      security::secagg::ConsentLedger::Open(daemon->options_.state_dir));
  site.ledger = daemon->ledger_.get();

  const std::string ledger =
      daemon->options_.state_dir.empty()
          ? ""
          : (std::filesystem::path(daemon->options_.state_dir) / "site-ledger.json").string();
  SV_ASSIGN_OR_RETURN(SitePolicyEnforcer enforcer,
                      SitePolicyEnforcer::Create(daemon->options_.policy, ledger));
  daemon->policy_.emplace(std::move(enforcer));
  for (const auto& [name, data] : daemon->options_.datasets) {
    daemon->datasets_[name].options = data;
    daemon->dataset_names_.insert(name);
    if (absl::StatusOr<std::string> csv = CsvFileOf(data); csv.ok()) {
      // A table's column names (never a value), so that a statistics
      // study naming a column this site lacks is refused at submit.
      if (absl::StatusOr<std::vector<std::string>> header = statistics::ReadHeader(*csv);
          header.ok()) {
        daemon->dataset_columns_[name] = *std::move(header);
      }
    }
    // Counted once at start: the coordinator weighs a site's update by its
    // sample count (and bounds secure sums by the largest), so registration
    // states each data set's counts, never anything else of it. No study
    // uses the data before its policy check passes.
    absl::StatusOr<DatasetSplit> counted = LoadDataset(data);
    if (!counted.ok()) {
      Logger("client")->warn("cannot read {}: {}; studies that need it will be refused",
                             daemon->DataSource(name), counted.status().message());
      continue;
    }
    daemon->dataset_counts_[name] = {counted->train.num_samples(), counted->test.num_samples()};
    Logger("client")->info("{}: {} training and {} evaluation samples", daemon->DataSource(name),
                           counted->train.num_samples(), counted->test.num_samples());
  }
  SV_RETURN_IF_ERROR(daemon->Connect());
  return daemon;
}

ClientDaemon::ClientDaemon(ClientDaemonOptions options)
    : options_(std::move(options)),
      backoff_(options_.initial_backoff),
      jitter_state_(options_.seed ^ static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()))) {}

ClientDaemon::~ClientDaemon() {
  if (state_lock_ >= 0) close(state_lock_);
}

absl::Status ClientDaemon::Connect() {
  SV_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                      security::MakeChannelCredentials(options_.tls));
  grpc::ChannelArguments args;
  if (!options_.server_name.empty()) args.SetSslTargetNameOverride(options_.server_name);
  args.SetMaxReceiveMessageSize(static_cast<int>(kMaxChunkBytes + (1 << 20)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5'000);
  channel_ = grpc::CreateCustomChannel(options_.coordinator, credentials, args);
  stub_ = v1::Federation::NewStub(channel_);
  // Heartbeats get a connection of their own: on the shared one they would
  // wait behind a model upload for HTTP/2 flow-control window, and a
  // coordinator busy setting up a large upload would then hear nothing.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  heartbeat_stub_ = v1::Federation::NewStub(
      grpc::CreateCustomChannel(options_.coordinator, credentials, args));
  std::vector<std::string> names(dataset_names_.begin(), dataset_names_.end());
  Logger("client")->info(
      "data sets {} (read only for a study this site's policy accepts); studies signed by {}; "
      "coordinator {}",
      absl::StrJoin(names, ", "),
      options_.allowed_operators.empty()
          ? std::string("any operator of the federation CA")
          : absl::StrCat("operators ", absl::StrJoin(options_.allowed_operators, ", ")),
      options_.coordinator);
  return absl::OkStatus();
}

void ClientDaemon::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  absl::MutexLock lock(&mutex_);
  for (grpc::ClientContext* context : live_contexts_) context->TryCancel();
}

std::unique_ptr<grpc::ClientContext> ClientDaemon::NewContext(absl::Duration timeout,
                                                              bool wait_for_connection) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  // Every call waits (within its deadline) for a connection rather than
  // failing at once while the channel is in backoff. gRPC's sync API moves a
  // connection attempt forward only while a call waits on it (otherwise
  // every 5 s, from its backup poller), so with fail-fast calls a site found
  // a restarted coordinator 15-20 s late, or, with a short connect timeout,
  // never. Transfers, whose deadlines are long, follow a call that just
  // succeeded and fail fast instead.
  context->set_wait_for_ready(wait_for_connection);
  absl::MutexLock lock(&mutex_);
  live_contexts_.insert(context.get());
  if (stop_.HasBeenNotified()) context->TryCancel();
  return context;
}

void ClientDaemon::Forget(grpc::ClientContext* context) {
  absl::MutexLock lock(&mutex_);
  live_contexts_.erase(context);
}

void ClientDaemon::Backoff(const absl::Status& why) {
  const std::string message(why.message());
  if (message != last_error_) {
    Logger("client")->warn("coordinator unreachable or refusing ({}); retrying with backoff", message);
    last_error_ = message;
  }
  // Full jitter: a random wait in [backoff/2, backoff] (SplitMix64 steps).
  jitter_state_ += 0x9e3779b97f4a7c15ULL;
  uint64_t z = jitter_state_;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  const double fraction = 0.5 + 0.5 * static_cast<double>((z ^ (z >> 31)) >> 11) / (1ULL << 53);
  stop_.WaitForNotificationWithTimeout(backoff_ * fraction);
  backoff_ = std::min(options_.max_backoff, backoff_ * 2);
}

absl::Status ClientDaemon::CallRegister(const SiteOffer& offer, bool check_only,
                                        v1::RegisterResponse* response) {
  v1::RegisterRequest request;
  request.set_protocol_version(v1::PROTOCOL_VERSION_1);
  // The single-run coordinator's counts: the site's one data set.
  if (const SiteDataset* legacy = legacy_dataset_.empty() ? nullptr : &datasets_.at(legacy_dataset_);
      legacy != nullptr && legacy->handler != nullptr) {
    request.set_num_train_samples(legacy->handler->num_train_samples());
    request.set_num_eval_samples(legacy->handler->num_eval_samples());
  }
  request.set_client_version("samverka 0.1");
  SetOffer(offer, &request);
  for (const std::string& name : dataset_names_) {
    v1::DatasetInfo* info = request.add_datasets();
    info->set_name(name);
    if (auto counts = dataset_counts_.find(name); counts != dataset_counts_.end()) {
      info->set_num_train_samples(counts->second.first);
      info->set_num_eval_samples(counts->second.second);
    }
    if (auto columns = dataset_columns_.find(name); columns != dataset_columns_.end()) {
      for (const std::string& column : columns->second) info->add_columns(column);
    }
  }
  request.set_check_only(check_only);
  std::unique_ptr<grpc::ClientContext> context = NewContext(absl::Seconds(15));
  absl::Status status = FromGrpc(stub_->Register(context.get(), request, response));
  Forget(context.get());
  return status;
}

std::string ClientDaemon::DataSource(const std::string& name) const {
  const auto it = options_.datasets.find(name);
  if (it == options_.datasets.end()) return absl::StrCat("data set '", name, "'");
  const std::string& spec = it->second.spec;
  if (spec.starts_with("csv:") && spec.rfind(':') > 4) {
    const size_t colon = spec.rfind(':');
    return absl::StrCat("data set '", name, "' (the CSV file ", spec.substr(4, colon - 4),
                        ", label column '", spec.substr(colon + 1), "')");
  }
  return absl::StrCat("data set '", name, "' (", spec,
                      it->second.data_dir.empty() ? "" : " in " + it->second.data_dir, ")");
}

absl::StatusOr<ClientDaemon::SiteDataset*> ClientDaemon::DatasetFor(
    const std::string& name, const FederationModel& model, std::string* coordinator_reason) {
  auto it = datasets_.find(name);
  if (it == datasets_.end()) {
    *coordinator_reason = absl::StrCat("this site has no data set '", name, "'");
    return absl::FailedPreconditionError(*coordinator_reason);
  }
  SiteDataset& dataset = it->second;
  const auto fits = [&](const FederationModel& fitted) {
    return fitted.input_shape == model.input_shape && fitted.num_classes == model.num_classes &&
           fitted.class_labels == model.class_labels;
  };
  if (dataset.data.has_value() && fits(dataset.fitted_for)) return &dataset;
  // Fitting maps labels in place, so another model's fit starts from the
  // file again.
  dataset.handler.reset();
  dataset.data.reset();
  for (auto m = models_.begin(); m != models_.end();) {
    m = m->first.first == name ? models_.erase(m) : std::next(m);
  }
  absl::StatusOr<DatasetSplit> loaded = LoadDataset(dataset.options);
  if (!loaded.ok()) {
    *coordinator_reason = absl::StrCat("the site could not read its data set '", name, "'");
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read ", DataSource(name), ": ", loaded.status().message()));
  }
  SV_RETURN_IF_ERROR(FitDatasetToModel(model, DataSource(name), &*loaded, coordinator_reason));
  dataset.data = *std::move(loaded);
  dataset.fitted_for = model;
  dataset.handler = std::make_unique<TaskHandler>(&dataset.data->train, std::vector<int64_t>{},
                                                  &dataset.data->test, std::vector<int64_t>{},
                                                  options_.seed);
  Logger("client")->info("{}: {} training and {} evaluation samples read, fitted to input_shape "
                         "{} and {} classes",
                         DataSource(name), dataset.data->train.num_samples(),
                         dataset.data->test.num_samples(), ShapeString(model.input_shape),
                         model.num_classes);
  return &dataset;
}

absl::Status ClientDaemon::Register() {
  // Decided afresh at each registration: the coordinator may have been
  // upgraded to one with studies while the site waited.
  legacy_model_.reset();
  legacy_dataset_.clear();
  SiteOffer offer;
  v1::RegisterResponse response;
  // First only ask what the federation is (an older coordinator registers
  // the site here already).
  SV_RETURN_IF_ERROR(CallRegister(offer, /*check_only=*/true, &response));
  if (response.has_model() && response.model().num_classes() > 0) {
    // A coordinator that predates studies trains one model on the site's
    // one data set: check the data against it before joining.
    const FederationModel model = FromProto(response.model());
    if (dataset_names_.size() != 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "federation '", response.federation_id(), "' runs a coordinator without studies, which "
          "trains one data set per site; this site names ", dataset_names_.size(),
          " in [datasets]"));
    }
    const std::string name = *dataset_names_.begin();
    std::string reason;
    absl::Status fits = DatasetFor(name, model, &reason).status();
    if (fits.ok()) {
      absl::StatusOr<models::Model*> built = ModelFor(model.model, name);
      if (!built.ok()) {
        reason = std::string(built.status().message());
        fits = absl::FailedPreconditionError(absl::StrCat(
            "this site cannot build the federation's model '", model.model, "' for ",
            DataSource(name), ": ", built.status().message()));
      }
    }
    if (!fits.ok()) {
      // Told, so the coordinator logs why this site stays away; then the
      // daemon stops: only the site's IT team can fix its data or files.
      offer.cannot_serve_reason = reason;
      v1::RegisterResponse ignored;
      CallRegister(offer, /*check_only=*/false, &ignored).IgnoreError();
      return absl::FailedPreconditionError(absl::StrCat(
          "this site cannot join federation '", response.federation_id(), "': ", fits.message()));
    }
    legacy_model_ = model;
    legacy_dataset_ = name;
    offer.sample_shape = datasets_.at(name).data->train.sample_shape;
  }
  response.Clear();
  absl::Status status = CallRegister(offer, /*check_only=*/false, &response);
  if (status.code() == absl::StatusCode::kFailedPrecondition) {
    std::vector<std::string> names(dataset_names_.begin(), dataset_names_.end());
    return absl::FailedPreconditionError(absl::StrCat(
        status.message(), " (this site's data sets: ", absl::StrJoin(names, ", "), ")"));
  }
  SV_RETURN_IF_ERROR(status);
  if (response.heartbeat_interval_seconds() > 0) {
    heartbeat_interval_ = absl::Seconds(response.heartbeat_interval_seconds());
  }
  if (legacy_model_.has_value()) {
    Logger("client")->info(
        "registered with federation '{}' as {}; {} fits its model '{}' (input_shape {}, {} "
        "classes)",
        response.federation_id(), response.client_name(), DataSource(legacy_dataset_),
        legacy_model_->model, ShapeString(legacy_model_->input_shape), legacy_model_->num_classes);
  } else {
    std::vector<std::string> names(dataset_names_.begin(), dataset_names_.end());
    Logger("client")->info(
        "registered with federation '{}' as {}, naming data sets {} (names only; no data is read "
        "before a study this site accepts)",
        response.federation_id(), response.client_name(), absl::StrJoin(names, ", "));
  }
  site_.name = response.client_name();
  site_.federation_id = response.federation_id();
  registered_ = true;
  last_error_.clear();
  backoff_ = options_.initial_backoff;
  return absl::OkStatus();
}

absl::StatusOr<v1::PollTaskResponse> ClientDaemon::Poll() {
  v1::PollTaskRequest request;
  request.set_protocol_version(v1::PROTOCOL_VERSION_1);
  request.set_wait_seconds(absl::ToDoubleSeconds(options_.poll_wait));
  v1::PollTaskResponse response;
  std::unique_ptr<grpc::ClientContext> context = NewContext(options_.poll_wait + absl::Seconds(10));
  absl::Status status = FromGrpc(stub_->PollTask(context.get(), request, &response));
  Forget(context.get());
  SV_RETURN_IF_ERROR(status);
  return response;
}

absl::Status ClientDaemon::Run() {
  auto log = Logger("client");
  while (!stop_.HasBeenNotified()) {
    if (!registered_) {
      if (absl::Status s = Register(); !s.ok()) {
        // The site cannot serve the federation: retrying would not help.
        if (s.code() == absl::StatusCode::kFailedPrecondition) return s;
        Backoff(s);
        continue;
      }
    }
    absl::StatusOr<v1::PollTaskResponse> poll = Poll();
    if (!poll.ok()) {
      if (poll.status().code() == absl::StatusCode::kNotFound) {
        registered_ = false;  // the coordinator restarted and forgot us
        continue;
      }
      if (stop_.HasBeenNotified()) break;
      Backoff(poll.status());
      continue;
    }
    backoff_ = options_.initial_backoff;
    last_error_.clear();
    // federation_done is not acted on: a standing federation runs study
    // after study, and the site serves them until its IT team stops it.
    if (!poll->has_task()) continue;
    absl::StatusOr<ClientTask> task = FromProto(poll->task());
    if (!task.ok()) {
      log->error("received a malformed task: {}", task.status().message());
      Backoff(task.status());
      continue;
    }
    if (absl::Status done = Execute(*task); !done.ok()) {
      if (stop_.HasBeenNotified()) break;
      log->warn("round {}: {}", task->round, done.message());
      if (Retryable(done.code())) Backoff(done);
    }
  }
  log->info("stopped");
  return absl::OkStatus();
}

absl::StatusOr<models::Model*> ClientDaemon::ModelFor(const std::string& source,
                                                      const std::string& dataset) {
  const SiteDataset& data = datasets_.at(dataset);
  if (!data.data.has_value()) return absl::InternalError("data set not read before its model");
  const std::vector<std::string> builtins = models::BuiltinModelNames();
  // A file is loaded only as ModelFile left it: named by its digest, which
  // was checked in this run (and allowed by the policy before that).
  const std::filesystem::path file(source);
  const bool verified_file =
      LooksLikeModelFile(source) &&
      file.parent_path() == std::filesystem::path(options_.state_dir) / "models" &&
      checked_model_files_.contains(file.stem().string());
  if (!verified_file && std::find(builtins.begin(), builtins.end(), source) == builtins.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", PeerText(source, 128), "' is not built in (",
        absl::StrJoin(builtins, ", "), "); a TorchScript model reaches a site only with a signed "
        "study"));
  }
  const auto key = std::make_pair(dataset, source);
  auto it = models_.find(key);
  if (it == models_.end()) {
    SV_ASSIGN_OR_RETURN(std::unique_ptr<models::Model> model,
                        models::CreateModel({source, data.data->train.sample_shape,
                                             data.data->train.num_classes},
                                            options_.seed));
    it = models_.emplace(key, std::move(model)).first;
  }
  return it->second.get();
}

std::optional<bool> ClientDaemon::SendHeartbeat(const std::string& task_id) {
  v1::HeartbeatRequest request;
  request.set_task_id(task_id);
  v1::HeartbeatResponse response;
  std::unique_ptr<grpc::ClientContext> context = NewContext(absl::Seconds(10));
  const grpc::Status status = heartbeat_stub_->Heartbeat(context.get(), request, &response);
  Forget(context.get());
  if (!status.ok()) return std::nullopt;
  return response.task_active();
}

absl::Status ClientDaemon::Refuse(const ClientTask& task, const std::string& reason) {
  Logger("client")->warn("round {}: refused the task: {}", task.round, reason);
  return Upload(TaskOutcome{task.task_id, task.round, task.kind, task.model_digest}, reason);
}

absl::Status ClientDaemon::RefuseStudy(const ClientTask& task, const absl::Status& why,
                                       bool whole_study) {
  const std::string reason = StudyRefusal(task.study_id, why);
  Logger("client")->warn("round {}: {}", task.round, reason);
  return Upload(TaskOutcome{task.task_id, task.round, task.kind, task.model_digest}, reason,
                whole_study);
}

absl::Status ClientDaemon::Execute(const ClientTask& offered) {
  auto log = Logger("client");
  log->info("round {}: {} task on model {}{}", offered.round,
            offered.kind == TaskKind::kTrain        ? "training"
            : offered.kind == TaskKind::kEvaluate   ? "evaluation"
            : offered.kind == TaskKind::kStatistics ? "statistics"
                                                    : "secure sum consent",
            Short(offered.model_digest),
            offered.study_id.empty() ? "" : absl::StrCat(" of study ", PeerText(offered.study_id, 64)));
  // Alive at the coordinator from now until the result is sent.
  TaskHeartbeat heartbeat(heartbeat_interval_, [&] { return SendHeartbeat(offered.task_id); });
  // What the task may do, decided before any data is read: a study's
  // signature and this site's policy, or (a coordinator without studies)
  // the policy alone.
  ClientTask task = offered;
  std::string dataset_name;
  FederationModel model_spec;
  std::string model_source;
  const VerifiedStudy* verified = nullptr;
  if (!offered.study_id.empty()) {
    absl::StatusOr<const VerifiedStudy*> study = StudyFor(offered.study_id);
    if (!study.ok() && study.status().code() == absl::StatusCode::kUnavailable) {
      return study.status();
    }
    absl::StatusOr<ClientTask> decided =
        study.ok() ? DecideStudyTask(offered, **study, dataset_names_, *policy_, absl::Now())
                   : absl::StatusOr<ClientTask>(study.status());
    if (!decided.ok()) {
      // A study that fails its signature or signer check, or whose model or
      // data set this site never takes, is refused as a whole.
      return RefuseStudy(offered, decided.status(),
                         !study.ok() || RefusesWholeStudy(**study, dataset_names_,
                                                          policy_->policy()));
    }
    task = *std::move(decided);
    verified = *study;
    dataset_name = (*study)->manifest.dataset;
    model_spec = (*study)->manifest.model;
    model_source = model_spec.model;
    if (task.kind != TaskKind::kConsent && !(*study)->model_sha256.empty()) {
      // Only now, with the digest allowed: the file travels with the study.
      absl::StatusOr<std::string> file = ModelFile(**study);
      if (!file.ok()) {
        if (Retryable(file.status().code()) || stop_.HasBeenNotified()) return file.status();
        return RefuseStudy(task, file.status(), /*whole_study=*/true);
      }
      model_source = *file;
    }
  } else if (legacy_model_.has_value()) {
    dataset_name = legacy_dataset_;
    model_spec = *legacy_model_;
    model_source = task.model;
    if (absl::Status allowed = policy_->Check(task, TaskScope{dataset_name, ""}, absl::Now());
        !allowed.ok()) {
      return Refuse(task, std::string(allowed.message()));
    }
  } else {
    return Refuse(task, "the task names no study, and this site takes tasks only of signed studies");
  }
  const security::secagg::ContributionScope scope{
      site_.federation_id, datasets_.at(dataset_name).options.spec, task.model_digest};
  site_.dataset = scope.dataset;
  if (task.kind == TaskKind::kConsent) return ExecuteConsent(task, scope);
  if (task.kind == TaskKind::kStatistics) {
    if (verified == nullptr || !verified->statistics.has_value()) {
      return Refuse(task, "a statistics task must belong to a signed statistics study");
    }
    return ExecuteStatistics(task, *verified, dataset_name, scope);
  }
  if (task.secure_aggregation.has_value()) {
    // Before any work: a second secure sum from a model this site already
    // released one from is refused (it would reveal the site's update).
    if (absl::Status open = ledger_->CheckCanContribute(scope); !open.ok()) {
      return Refuse(task, absl::StrCat("site policy: ", open.message()));
    }
  }
  // The data set, read (once) now that the study passed, fitted to its model.
  std::string coordinator_reason;
  absl::StatusOr<SiteDataset*> dataset = DatasetFor(dataset_name, model_spec, &coordinator_reason);
  if (!dataset.ok()) {
    log->error("round {}: {}{}", task.round,
               task.study_id.empty() ? "" : absl::StrCat("refused study ", task.study_id, ": "),
               dataset.status().message());
    if (!task.study_id.empty()) {
      // The site's log has the file and labels; the coordinator hears the
      // same without them.
      refused_studies_.emplace(task.study_id, absl::FailedPreconditionError(coordinator_reason));
      studies_.erase(task.study_id);
      return Upload(TaskOutcome{task.task_id, task.round, task.kind, task.model_digest},
                    StudyRefusal(task.study_id, absl::FailedPreconditionError(coordinator_reason)),
                    /*refuses_study=*/true);
    }
    return Upload(TaskOutcome{task.task_id, task.round, task.kind, task.model_digest},
                  coordinator_reason);
  }
  absl::StatusOr<models::Model*> model = ModelFor(model_source, dataset_name);
  if (!model.ok()) return Refuse(task, std::string(model.status().message()));
  SV_ASSIGN_OR_RETURN(std::string encoded, Download(task.model_digest));
  SV_ASSIGN_OR_RETURN(ModelParameters global, DecodeParameters(encoded));
  encoded.clear();
  encoded.shrink_to_fit();

  // Secure aggregation: advertise keys over the model just checked and share
  // seeds with the neighbours, before training.
  std::unique_ptr<SecureAggregationSession> session;
  CallbackTransport transport = TransportFor(task);
  if (task.secure_aggregation.has_value()) {
    absl::StatusOr<std::unique_ptr<SecureAggregationSession>> started =
        SecureAggregationSession::Start(site_, *task.secure_aggregation, task.round,
                                        task.model_digest, &transport);
    if (!started.ok()) {
      log->error("round {}: left secure aggregation before training: {}", task.round,
                 started.status().message());
      if (stop_.HasBeenNotified()) return started.status();
      return Upload(TaskOutcome{task.task_id, task.round, task.kind, task.model_digest},
                    absl::StrCat("secure aggregation: ", started.status().message()));
    }
    session = std::move(*started);
  }

  absl::StatusOr<TaskOutcome> outcome = (*dataset)->handler->Run(task, global, **model);
  if (!heartbeat.wanted()) {
    return absl::AbortedError("the coordinator no longer wants this task (its round closed)");
  }
  if (!outcome.ok()) {
    log->error("round {}: the task failed: {}", task.round, outcome.status().message());
    return Upload(TaskOutcome{task.task_id, task.round, task.kind, task.model_digest},
                  std::string(outcome.status().message()));
  }
  if (task.kind == TaskKind::kTrain) {
    if (absl::Status recorded = policy_->RecordTraining(task, dataset_name, absl::Now());
        !recorded.ok()) {
      log->error("round {}: {}; not sending the update", task.round, recorded.message());
      return Upload(TaskOutcome{task.task_id, task.round, task.kind, task.model_digest},
                    "the site could not record the round in its policy ledger");
    }
  }
  if (task.dp.clip_norm > 0) {
    if (absl::StatusOr<double> spent = policy_->EpsilonSpent(dataset_name); spent.ok()) {
      log->info("round {}: differential privacy: update clipped to norm {}; this site's privacy "
                "loss on data set '{}' so far is epsilon {:.3f} (delta {})",
                task.round, task.dp.clip_norm, dataset_name, *spent,
                options_.policy.max_epsilon_delta);
    }
  }
  if (session == nullptr) return Upload(*outcome, "");
  SV_ASSIGN_OR_RETURN(ModelParameters update, DecodeParameters(outcome->update));
  outcome->update.clear();
  const double loss = outcome->metrics.contains("train_loss") ? outcome->metrics["train_loss"] : 0;
  // DP-FedAvg weighs every (clipped) update the same.
  const bool dp = task.dp.clip_norm > 0;
  absl::StatusOr<SecureContribution> sent = session->Contribute(
      update.values, dp ? 1.0 : static_cast<double>(outcome->num_samples), loss,
      dp ? outcome->metrics["dp_within_clip"] : 0.0);
  if (!sent.ok()) {
    log->error("round {}: secure aggregation stopped: {}", task.round, sent.status().message());
    return sent.status();
  }
  if (sent->clipped_values > 0) {
    log->warn("round {}: {} update values were beyond the clipping range and were clipped",
              task.round, sent->clipped_values);
  }
  log->info("round {}: secure aggregation done ({} neighbours, threshold {}): only the masked "
            "update and key shares left this site",
            task.round, sent->neighbours, sent->threshold);
  return absl::OkStatus();
}

}  // namespace samverka::client
