// coordinator/coordinator.cc
#include "coordinator/coordinator.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/codec.h"
#include "common/logging.h"
#include "common/peer_text.h"
#include "common/status_macros.h"
#include "coordinator/internal/durable_files.h"
#include "coordinator/model_helper.h"
#include "coordinator/reported_numbers.h"
#include "coordinator/studies/statistics_run.h"
#include "coordinator/studies/study_options.h"
#include "security/signed_study.h"

namespace samverka::coordinator {
namespace {

bool Call(std::function<bool()>* predicate) { return (*predicate)(); }

namespace fs = std::filesystem;

// Study states as the studies table keeps them.
constexpr char kQueued[] = "queued";
constexpr char kRunning[] = "running";
constexpr char kFinished[] = "finished";
constexpr char kFailed[] = "failed";
constexpr char kAborted[] = "aborted";

bool Ended(const std::string& state) {
  return state == kFinished || state == kFailed || state == kAborted;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(CoordinatorOptions options) {
  SV_RETURN_IF_ERROR(options.standing ? options.ValidateFederation() : options.Validate());
  SV_ASSIGN_OR_RETURN(std::unique_ptr<StateStore> store,
                      StateStore::Open(options.state_dir, options.federation_id));
  auto coordinator =
      std::unique_ptr<Coordinator>(new Coordinator(std::move(options), std::move(store)));
  if (!coordinator->options_.standing) {
    // The single study of coordinator.toml, with its files where they
    // always were; a bad model or test set fails start-up here.
    StudySetup setup;
    setup.options = coordinator->options_;
    SV_ASSIGN_OR_RETURN(setup.store, coordinator->federation_.store->ForStudy(""));
    setup.dir = coordinator->options_.state_dir;
    SV_ASSIGN_OR_RETURN(std::unique_ptr<StudyRun> run,
                        StudyRun::Create(std::move(setup), &coordinator->federation_));
    absl::MutexLock lock(&coordinator->federation_.mutex);
    coordinator->active_ = std::move(run);
    coordinator->federation_.active = coordinator->active_.get();
  } else {
    Logger("coordinator")
        ->info("standing federation '{}': studies are submitted with `samverka study submit`",
               coordinator->options_.federation_id);
  }
  return coordinator;
}

Coordinator::Coordinator(CoordinatorOptions options, std::unique_ptr<StateStore> store)
    : options_(std::move(options)),
      federation_(3 * options_.heartbeat_interval + options_.max_poll, std::move(store)) {}

Coordinator::~Coordinator() {
  absl::MutexLock lock(&federation_.mutex);
  federation_.active = nullptr;
}

std::string Coordinator::StudyDir(const std::string& id) const {
  return (fs::path(options_.state_dir) / "studies" / id).string();
}

std::string Coordinator::ModelFilePath(const std::string& sha256) const {
  return (fs::path(options_.state_dir) / "models" / (sha256 + ".pt")).string();
}

ActiveStudy* Coordinator::StudyOf(const ClientTask& task) {
  if (active_ == nullptr || task.study_id != active_->id()) return nullptr;
  return active_.get();
}

// ---- sites ----------------------------------------------------------------

absl::Status Coordinator::Register(const std::string& client, int64_t train_samples,
                                   int64_t eval_samples,
                                   std::map<std::string, SiteDataset> datasets) {
  SV_RETURN_IF_ERROR(
      CheckRegisteredSamples(train_samples, eval_samples, options_.max_samples_per_site));
  for (const auto& [name, counts] : datasets) {
    if (absl::Status valid = CheckStudyName(name); !valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("site ", client, " names a data set '", PeerText(name, 64), "': ",
                       valid.message()));
    }
    SV_RETURN_IF_ERROR(CheckRegisteredSamples(counts.train_samples, counts.eval_samples,
                                              options_.max_samples_per_site));
    for (const std::string& column : counts.columns) {
      if (column.empty() || column.size() > 256) {
        return absl::InvalidArgumentError(absl::StrCat(
            "site ", client, " names a column of data set '", name,
            "' that is empty or longer than 256 characters"));
      }
    }
  }
  std::vector<std::string> names;
  {
    absl::MutexLock lock(&federation_.mutex);
    ClientInfo& info = federation_.clients[client];
    const bool rejoin = info.online;
    info.name = client;
    info.train_samples = train_samples;
    info.eval_samples = eval_samples;
    info.datasets = std::move(datasets);
    info.online = true;
    for (const auto& [name, counts] : info.datasets) {
      known_datasets_.insert(name);
      known_columns_[name].insert(counts.columns.begin(), counts.columns.end());
      names.push_back(name);
    }
    federation_.liveness.Touch(client, absl::Now());
    if (active_ != nullptr) active_->AddSite(client);
    if (!rejoin) {
      Logger("coordinator")
          ->info("site {} joined ({})", client,
                 names.empty() ? absl::StrCat(train_samples, " training, ", eval_samples,
                                              " evaluation samples")
                               : absl::StrCat("data sets ", absl::StrJoin(names, ", ")));
    }
  }
  // A site that registers again and again (a restart loop) is one row a
  // minute, with the count.
  int64_t held_back = 0;
  if (!federation_.joins_seen.Admit(client, absl::Now(), &held_back)) return absl::OkStatus();
  nlohmann::json details = {{"train_samples", train_samples}, {"eval_samples", eval_samples}};
  if (!names.empty()) details["datasets"] = names;  // a JSON array
  if (held_back > 0) details["repeated"] = held_back;
  return federation_.store->Audit("join", client, details);
}

FederationModel Coordinator::model_spec() const {
  if (options_.standing) return {};
  return {options_.model, options_.input_shape, options_.num_classes, options_.class_labels};
}

absl::Status Coordinator::CheckSite(const std::string& client, const SiteOffer& offer) {
  if (options_.standing) return absl::OkStatus();  // each study is checked at the site
  const absl::Status fits = CheckSiteCanServe(model_spec(), offer);
  if (fits.ok()) return fits;
  const std::string reason(fits.message());
  Logger("coordinator")->warn(
      "refused site {}: it cannot train the federation's model: {}; it is not registered and no "
      "round waits for it", client, reason);
  {
    absl::MutexLock lock(&federation_.mutex);
    if (auto it = federation_.clients.find(client);
        it != federation_.clients.end() && it->second.online) {
      // A site that was serving and came back unable to (its data changed).
      it->second.online = false;
      if (active_ != nullptr) active_->OnSiteOffline(client);
      federation_.EndTask(client, "", reason);
    }
    federation_.AddRefusal(TaskRefusal{
        client, active_ != nullptr ? active_->next_round() : 0, "not registered: " + reason, ""});
  }
  federation_.store->Audit("site_refused", client, {{"reason", reason}}).IgnoreError();
  return absl::FailedPreconditionError(
      absl::StrCat("the coordinator refused site ", client, ": ", reason));
}

absl::StatusOr<PollResult> Coordinator::PollTask(const std::string& client, absl::Duration wait) {
  SiteLiveness::Waiting waiting(&federation_.liveness, client);  // see SiteLiveness
  absl::MutexLock lock(&federation_.mutex);
  auto it = federation_.clients.find(client);
  if (it == federation_.clients.end() || !it->second.online) {
    return absl::NotFoundError(absl::StrCat("site ", client, " is not registered; register first"));
  }
  federation_.liveness.Touch(client, absl::Now());
  if (active_ != nullptr && !federation_.assigned.contains(client)) {
    // A site back after a restart: a stored sum still needs its consent.
    if (std::optional<ClientTask> consent = active_->TakeConsentTask(client)) {
      federation_.assigned[client] = *std::move(consent);
    }
  }
  std::function<bool()> ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_.mutex) {
    return federation_.assigned.contains(client) || done_ || federation_.stop;
  };
  const absl::Duration capped = std::clamp(wait, absl::ZeroDuration(), options_.max_poll);
  federation_.mutex.AwaitWithTimeout(absl::Condition(&Call, &ready), capped);
  federation_.liveness.Touch(client, absl::Now());
  PollResult result;
  result.federation_done = done_;
  if (done_) told_done_.insert(client);
  if (auto task = federation_.assigned.find(client); task != federation_.assigned.end()) {
    result.task = task->second;
  }
  return result;
}

absl::StatusOr<std::shared_ptr<const std::string>> Coordinator::Model(const std::string& digest) {
  absl::MutexLock lock(&federation_.mutex);
  std::shared_ptr<const std::string> model =
      active_ != nullptr ? active_->FindModel(digest) : nullptr;
  if (model == nullptr) {
    return absl::NotFoundError(absl::StrCat("no model with digest ", digest.substr(0, 64)));
  }
  return model;
}

absl::StatusOr<std::shared_ptr<const std::string>> Coordinator::ModelToDownload(
    const std::string& client, const std::string& digest) {
  SiteLiveness::Waiting waiting(&federation_.liveness, client);  // see SiteLiveness
  absl::MutexLock lock(&federation_.mutex);
  auto task = federation_.assigned.find(client);
  ActiveStudy* study = task == federation_.assigned.end() ? nullptr : StudyOf(task->second);
  std::shared_ptr<const std::string> model =
      study != nullptr ? study->FindModel(digest) : nullptr;
  if (study == nullptr || task->second.model_digest != digest ||
      task->second.kind == TaskKind::kConsent || model == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "site ", client, " has no open task on model ", PeerText(digest.substr(0, 16)),
        "; a model is downloaded for a task"));
  }
  return model;
}

absl::Status Coordinator::CheckResultLocked(const std::string& client, const TaskOutcome& outcome) {
  auto it = federation_.assigned.find(client);
  ActiveStudy* study = it == federation_.assigned.end() ? nullptr : StudyOf(it->second);
  if (study == nullptr || it->second.task_id != outcome.task_id ||
      it->second.round != outcome.round) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no open task '", PeerText(outcome.task_id, 64), "' for ", client,
        " (round ", outcome.round, ")"));
  }
  return study->CheckResult(client, it->second, outcome);
}

absl::Status Coordinator::ExpectResult(const std::string& client, const TaskOutcome& outcome) {
  SiteLiveness::Waiting waiting(&federation_.liveness, client);  // see SiteLiveness
  absl::MutexLock lock(&federation_.mutex);
  return CheckResultLocked(client, outcome);
}

absl::Status Coordinator::SubmitResult(const std::string& client, const TaskOutcome& outcome,
                                       ReceivedUpdate received) {
  SiteLiveness::Waiting waiting(&federation_.liveness, client);  // see SiteLiveness
  federation_.liveness.Refresh(client, absl::Now());
  std::shared_ptr<ActiveStudy> study;
  {
    absl::MutexLock lock(&federation_.mutex);
    SV_RETURN_IF_ERROR(CheckResultLocked(client, outcome));
    study = active_;
  }
  return study->SubmitResult(client, outcome, std::move(received));
}

absl::StatusOr<std::shared_ptr<SecureRound>> Coordinator::SecureRoundOf(
    const std::string& client, const std::string& task_id) {
  federation_.liveness.Refresh(client, absl::Now());
  absl::MutexLock lock(&federation_.mutex);
  auto it = federation_.assigned.find(client);
  ActiveStudy* study = it == federation_.assigned.end() ? nullptr : StudyOf(it->second);
  if (study == nullptr || it->second.task_id != task_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("no open task '", task_id.substr(0, 64), "' for ", client));
  }
  std::shared_ptr<SecureRound> secure = study->secure_round();
  if (secure == nullptr || !it->second.secure_aggregation.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("task '", task_id.substr(0, 64), "' does not use secure aggregation"));
  }
  return secure;
}

absl::Status Coordinator::SecAggSend(const std::string& client, const std::string& task_id,
                                     SecureStage stage, std::string_view payload) {
  SiteLiveness::Waiting waiting(&federation_.liveness, client);  // see SiteLiveness
  SV_ASSIGN_OR_RETURN(std::shared_ptr<SecureRound> secure, SecureRoundOf(client, task_id));
  SV_RETURN_IF_ERROR(secure->Send(client, stage, payload));
  if (stage == SecureStage::kConsent) {
    // The site's part is done; its task is no longer handed out.
    absl::MutexLock lock(&federation_.mutex);
    if (auto it = federation_.assigned.find(client);
        it != federation_.assigned.end() && it->second.task_id == task_id) {
      federation_.assigned.erase(it);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> Coordinator::SecAggFetch(const std::string& client,
                                                                    const std::string& task_id,
                                                                    SecureStage stage,
                                                                    absl::Duration wait) {
  SiteLiveness::Waiting waiting(&federation_.liveness, client);  // see SiteLiveness
  SV_ASSIGN_OR_RETURN(std::shared_ptr<SecureRound> secure, SecureRoundOf(client, task_id));
  return secure->Fetch(client, stage, std::clamp(wait, absl::ZeroDuration(), options_.max_poll));
}

void Coordinator::Touch(const std::string& client) {
  // Never waits for the mutex: a sign of life counts the moment it arrives.
  federation_.liveness.Refresh(client, absl::Now());
}

bool Coordinator::Heartbeat(const std::string& client, const std::string& task_id) {
  SiteLiveness::Waiting waiting(&federation_.liveness, client);  // see SiteLiveness
  Touch(client);
  absl::MutexLock lock(&federation_.mutex);
  auto info = federation_.clients.find(client);
  if (info == federation_.clients.end() || !info->second.online) return false;
  auto it = federation_.assigned.find(client);
  return it != federation_.assigned.end() && it->second.task_id == task_id;
}

void Coordinator::ReportTaskFailure(const std::string& client, const std::string& task_id,
                                    const std::string& reason, bool refuses_study) {
  SiteLiveness::Waiting waiting(&federation_.liveness, client);  // see SiteLiveness
  absl::MutexLock lock(&federation_.mutex);
  auto it = federation_.assigned.find(client);
  if (it == federation_.assigned.end() || it->second.task_id != task_id) return;
  const ClientTask task = it->second;
  ActiveStudy* study = StudyOf(task);
  if (study != nullptr) {
    if (refuses_study && !study->id().empty()) {
      study->SiteRefused(client);
      Logger("coordinator")->warn("site {} is no longer offered study {}", client, study->id());
    } else if (task.kind == TaskKind::kTrain) {
      study->NoteTrainingFailure(client, task.round);
    }
  }
  federation_.EndTask(client, task_id, reason);
  federation_.AddRefusal(TaskRefusal{client, task.round, reason, task.study_id});
  nlohmann::json details = {{"task", task_id}, {"reason", reason}};
  if (!task.study_id.empty()) details["study"] = task.study_id;
  if (refuses_study) details["refuses_study"] = true;
  federation_.store->Audit("task_failed", client, details).IgnoreError();
}

absl::StatusOr<StudyRecord> Coordinator::StudyForSite(const std::string& client,
                                                      const std::string& id) {
  SiteLiveness::Waiting waiting(&federation_.liveness, client);  // see SiteLiveness
  {
    absl::MutexLock lock(&federation_.mutex);
    auto it = federation_.clients.find(client);
    if (it == federation_.clients.end() || !it->second.online) {
      return absl::NotFoundError(absl::StrCat("site ", client, " is not registered; register first"));
    }
  }
  SV_ASSIGN_OR_RETURN(std::optional<StudyRecord> study, federation_.store->FindStudy(id));
  if (!study.has_value()) {
    return absl::NotFoundError(absl::StrCat("no study ", PeerText(id, 64)));
  }
  return *std::move(study);
}

absl::StatusOr<std::shared_ptr<const std::string>> Coordinator::ModelFile(
    const std::string& client, const std::string& sha256) {
  bool valid = sha256.size() == 64;
  for (char c : sha256) valid = valid && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!valid) return absl::InvalidArgumentError("model_sha256 is not a SHA-256 in hex");
  {
    absl::MutexLock lock(&federation_.mutex);
    auto it = federation_.clients.find(client);
    if (it == federation_.clients.end() || !it->second.online) {
      return absl::NotFoundError(absl::StrCat("site ", client, " is not registered; register first"));
    }
  }
  absl::StatusOr<std::string> bytes = internal::ReadFile(ModelFilePath(sha256));
  if (!bytes.ok()) {
    return absl::NotFoundError(absl::StrCat("no study brings a model file ", sha256.substr(0, 16)));
  }
  return std::make_shared<const std::string>(*std::move(bytes));
}

CoordinatorStatus Coordinator::Status() {
  CoordinatorStatus status;
  std::shared_ptr<ActiveStudy> study;
  {
    absl::MutexLock lock(&federation_.mutex);
    federation_.MarkDeadClients(absl::Now());
    status.federation_id = options_.federation_id;
    study = active_;
    if (study != nullptr) {
      status.active_study = study->id();
      status.next_round = study->next_round();
      status.rounds = study->rounds();
    }
    status.done = done_;
    for (const auto& [name, info] : federation_.clients) {
      status.clients.push_back(info);
      if (std::optional<absl::Time> seen = federation_.liveness.LastSeen(name)) {
        status.clients.back().last_seen = *seen;
      }
    }
    status.refusals.assign(federation_.refusals.begin(), federation_.refusals.end());
  }
  if (study != nullptr) {
    absl::StatusOr<std::vector<RoundRecord>> rounds = study->store().Rounds(10);
    if (rounds.ok()) status.recent_rounds = std::move(*rounds);
  }
  return status;
}

bool Coordinator::AuditRefusal(const std::string& peer, const std::string& reason) {
  return federation_.AuditRefusal(peer, reason);
}

// ---- studies ----------------------------------------------------------------

uint64_t Coordinator::StatisticsVectorBytes() {
  absl::MutexLock lock(&federation_.mutex);
  return active_ != nullptr ? active_->statistics_vector_bytes() : 0;
}

std::set<std::string> Coordinator::KnownDatasets() {
  absl::MutexLock lock(&federation_.mutex);
  return known_datasets_;
}

absl::StatusOr<StudyRecord> Coordinator::SubmitStudy(StudySubmission s) {
  if (!options_.standing) {
    return absl::FailedPreconditionError(
        "this coordinator runs the study its coordinator.toml names; remove the study keys "
        "(model, rounds, ...) from coordinator.toml to run submitted studies");
  }
  security::StudyEnvelope envelope{options_.federation_id, s.manifest, s.model_sha256,
                                   s.submitted_unix_ms, s.nonce};
  SV_ASSIGN_OR_RETURN(security::PeerIdentity signer,
                      security::VerifyStudySignature(envelope, s.signature, s.operator_certificate,
                                                     options_.ca_pem, nullptr, absl::Now()));
  const std::string id = security::StudyId(envelope);
  std::string model_path;
  if (!s.model_sha256.empty()) {
    if (Sha256Hex(s.model_file) != s.model_sha256) {
      return absl::InvalidArgumentError(
          "the model file does not match the SHA-256 the operator signed");
    }
    model_path = ModelFilePath(s.model_sha256);
  } else if (!s.model_file.empty()) {
    return absl::InvalidArgumentError("a model file came without its signed SHA-256");
  }
  const std::set<std::string> known = KnownDatasets();
  // The file must exist for the model checks; it is written under its
  // digest, so a study refused below leaves at most a file no study names.
  // Another study may bring the same file: then it is kept whatever this
  // submission's fate.
  bool wrote_model = false;
  if (!model_path.empty() && !fs::exists(model_path)) {
    std::error_code error;
    fs::create_directories(fs::path(model_path).parent_path(), error);
    SV_RETURN_IF_ERROR(internal::WriteFileAtomically(model_path, s.model_file));
    wrote_model = true;
  }
  auto refuse = [&](absl::Status why) {
    if (wrote_model) fs::remove(model_path);
    return why;
  };
  absl::StatusOr<Study> study = ReadStudy(s.manifest, "the study", options_, known, model_path);
  if (!study.ok()) return refuse(study.status());
  if (study->statistics.has_value()) {
    // Checked against the columns the sites registered (their headers),
    // when they said: a column no site has is a mistake in the manifest.
    std::set<std::string> columns;
    {
      absl::MutexLock lock(&federation_.mutex);
      if (auto it = known_columns_.find(study->manifest.dataset); it != known_columns_.end()) {
        columns = it->second;
      }
    }
    if (!columns.empty()) {
      if (absl::Status found = statistics::CheckSpecColumns(
              *study->statistics, columns,
              absl::StrCat("data set '", study->manifest.dataset, "' at any site"));
          !found.ok()) {
        return refuse(absl::InvalidArgumentError(absl::StrCat("the study: ", found.message())));
      }
    }
  } else if (absl::StatusOr<ModelParameters> built = BuildInitialModel(
          {options_.model_helper.empty() ? DefaultModelHelperPath() : options_.model_helper,
           study->options.model, study->options.input_shape, study->options.num_classes,
           study->options.seed, study->options.eval_deadline});
      !built.ok()) {
    return refuse(absl::InvalidArgumentError(
        absl::StrCat("the study's model does not build: ", built.status().message())));
  }
  StudyRecord record;
  record.id = id;
  record.name = study->manifest.name;
  record.kind = study->manifest.kind;
  record.dataset = study->manifest.dataset;
  record.model = study->statistics.has_value() ? "-" : study->manifest.model.model;
  record.rounds = study->options.rounds;
  record.state = kQueued;
  record.submitted_by = signer.name;
  record.submitted_unix_ms = s.submitted_unix_ms;
  record.manifest = s.manifest;
  record.model_sha256 = s.model_sha256;
  record.model_bytes = static_cast<int64_t>(s.model_file.size());
  record.nonce = s.nonce;
  record.operator_certificate = s.operator_certificate;
  record.signature = s.signature;
  if (absl::Status added = federation_.store->AddStudy(record); !added.ok()) return refuse(added);
  Logger("coordinator")
      ->info("study {} ('{}', data set {}, model {}, {} rounds) submitted by {}; queued", id,
             record.name, record.dataset, record.model, record.rounds, signer.name);
  absl::MutexLock lock(&federation_.mutex);
  studies_changed_ = true;
  return record;
}

absl::StatusOr<std::vector<StudyRecord>> Coordinator::Studies() {
  return federation_.store->Studies();
}

absl::StatusOr<StudyDetails> Coordinator::ShowStudy(const std::string& id) {
  SV_ASSIGN_OR_RETURN(std::optional<StudyRecord> record, federation_.store->FindStudy(id));
  if (!record.has_value()) return absl::NotFoundError(absl::StrCat("no study ", id));
  StudyDetails details;
  details.record = *std::move(record);
  SV_ASSIGN_OR_RETURN(std::unique_ptr<StateStore> view, federation_.store->ForStudy(id));
  SV_ASSIGN_OR_RETURN(details.rounds, view->Rounds(int64_t{1} << 40));
  if (details.record.kind == "statistics") {
    SV_ASSIGN_OR_RETURN(std::optional<Checkpoint> released, view->LoadLatest());
    if (released.has_value() && released->round >= 1) {
      details.statistics_json = std::move(released->encoded_model);
    }
  }
  for (const RoundRecord& r : details.rounds) {
    if (r.succeeded) details.sites.insert(r.participants.begin(), r.participants.end());
    if (auto e = r.metrics.find("epsilon"); e != r.metrics.end()) {
      details.epsilon = std::max(details.epsilon, e->second);
    }
  }
  absl::MutexLock lock(&federation_.mutex);
  for (const TaskRefusal& r : federation_.refusals) {
    if (r.study == id) details.refusals.push_back(r);
  }
  return details;
}

absl::StatusOr<std::string> Coordinator::AbortStudy(const std::string& id, const std::string& by) {
  SV_ASSIGN_OR_RETURN(std::optional<StudyRecord> record, federation_.store->FindStudy(id));
  if (!record.has_value()) return absl::NotFoundError(absl::StrCat("no study ", id));
  if (Ended(record->state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("study ", id, " has already ended (", record->state, ")"));
  }
  SV_RETURN_IF_ERROR(
      federation_.store->SetStudyState(id, kAborted, absl::StrCat("aborted by ", by)));
  absl::MutexLock lock(&federation_.mutex);
  if (active_ != nullptr && active_->id() == id) active_->Abort();
  studies_changed_ = true;
  Logger("coordinator")->warn("study {} aborted by {}", id, by);
  return std::string(kAborted);
}

absl::StatusOr<Checkpoint> Coordinator::ExportModel(const std::string& id, int64_t round) {
  SV_ASSIGN_OR_RETURN(std::optional<StudyRecord> record, federation_.store->FindStudy(id));
  if (!record.has_value()) return absl::NotFoundError(absl::StrCat("no study ", id));
  SV_ASSIGN_OR_RETURN(std::unique_ptr<StateStore> view, federation_.store->ForStudy(id));
  SV_ASSIGN_OR_RETURN(std::optional<Checkpoint> checkpoint,
                      round > 0 ? view->LoadCheckpoint(round) : view->LoadLatest());
  if (!checkpoint.has_value() || (round == 0 && checkpoint->round == 0)) {
    return absl::NotFoundError(
        round > 0 ? absl::StrCat("study ", id, " has no checkpoint of round ", round,
                                 " (failed, pruned or not run yet)")
                  : absl::StrCat("study ", id, " has no committed round yet"));
  }
  return *std::move(checkpoint);
}

absl::StatusOr<std::vector<std::string>> Coordinator::StudyMetrics(const std::string& id) {
  SV_ASSIGN_OR_RETURN(std::optional<StudyRecord> record, federation_.store->FindStudy(id));
  if (!record.has_value()) return absl::NotFoundError(absl::StrCat("no study ", id));
  std::vector<std::string> rows;
  std::ifstream jsonl(fs::path(StudyDir(id)) / "metrics.jsonl");
  for (std::string line; std::getline(jsonl, line);) {
    if (!line.empty()) rows.push_back(line);
  }
  return rows;
}

absl::StatusOr<std::shared_ptr<ActiveStudy>> Coordinator::StartStudy(const StudyRecord& record) {
  // The study as stored must still be the one its operator signed (at the
  // time it was submitted) and name its own id: a state database edited
  // behind the coordinator's back runs nothing.
  const security::StudyEnvelope envelope{options_.federation_id, record.manifest,
                                         record.model_sha256, record.submitted_unix_ms,
                                         record.nonce};
  if (security::StudyId(envelope) != record.id) {
    return absl::DataLossError(absl::StrCat(
        "the stored study ", record.id, " no longer matches its id (its manifest, model digest, "
        "time or nonce was changed in the state database)"));
  }
  // Valid when it was submitted (its certificate may have expired since
  // while it queued) or now (the operator's clock may lag the CA's).
  absl::StatusOr<security::PeerIdentity> signer = security::VerifyStudySignature(
      envelope, record.signature, record.operator_certificate, options_.ca_pem, nullptr,
      absl::FromUnixMillis(record.submitted_unix_ms));
  if (!signer.ok()) {
    signer = security::VerifyStudySignature(envelope, record.signature,
                                            record.operator_certificate, options_.ca_pem, nullptr,
                                            absl::Now());
  }
  if (!signer.ok()) {
    return absl::DataLossError(absl::StrCat("the stored study ", record.id,
                                            " no longer verifies: ", signer.status().message()));
  }
  std::string model_path;
  if (!record.model_sha256.empty()) model_path = ModelFilePath(record.model_sha256);
  SV_ASSIGN_OR_RETURN(Study study, ReadStudy(record.manifest, absl::StrCat("study ", record.id),
                                             options_, {}, model_path));
  if (study.statistics.has_value()) {
    StatisticsSetup setup;
    setup.id = record.id;
    setup.dataset = study.manifest.dataset;
    setup.options = std::move(study.options);
    setup.spec = *std::move(study.statistics);
    setup.manifest_digest = Sha256Hex(record.manifest);
    setup.dp_delta = study.manifest.dp_delta;
    setup.dp_sites = study.manifest.dp_sites();
    SV_ASSIGN_OR_RETURN(setup.store, federation_.store->ForStudy(record.id));
    setup.dir = StudyDir(record.id);
    SV_ASSIGN_OR_RETURN(std::unique_ptr<StatisticsRun> run,
                        StatisticsRun::Create(std::move(setup), &federation_));
    return std::shared_ptr<ActiveStudy>(std::move(run));
  }
  StudySetup setup;
  setup.id = record.id;
  setup.dataset = study.manifest.dataset;
  setup.options = std::move(study.options);
  SV_ASSIGN_OR_RETURN(setup.store, federation_.store->ForStudy(record.id));
  setup.dir = StudyDir(record.id);
  setup.task_model = study.manifest.model.model;
  // The initial model is drawn from the manifest's seed and the study's
  // id: two studies of one model never start from the same parameters,
  // whose second secure sum on a data set every site would refuse (the
  // consent ledger guards against differencing two sums from one model).
  uint64_t id_bits = 0;
  for (char c : record.id.substr(0, 15)) id_bits = id_bits * 16 + (c <= '9' ? c - '0' : c - 'a' + 10);
  setup.options.seed ^= id_bits;
  SV_ASSIGN_OR_RETURN(std::unique_ptr<StudyRun> run, StudyRun::Create(std::move(setup), &federation_));
  return std::shared_ptr<ActiveStudy>(std::move(run));
}

absl::Status Coordinator::RunStudies() {
  auto log = Logger("coordinator");
  while (true) {
    SV_ASSIGN_OR_RETURN(std::vector<StudyRecord> studies, federation_.store->Studies());
    // A study that was running when the coordinator stopped resumes first;
    // then the queued ones in submission order.
    const StudyRecord* next = nullptr;
    for (const StudyRecord& s : studies) {
      if (s.state == kRunning) {
        next = &s;
        break;
      }
    }
    for (const StudyRecord& s : studies) {
      if (next == nullptr && s.state == kQueued) next = &s;
    }
    if (next == nullptr) {
      absl::MutexLock lock(&federation_.mutex);
      std::function<bool()> changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_.mutex) {
        return studies_changed_;
      };
      if (!federation_.WaitFor(changed, absl::InfiniteFuture())) return absl::OkStatus();
      studies_changed_ = false;
      continue;
    }
    const StudyRecord record = *next;
    {
      absl::MutexLock lock(&federation_.mutex);
      if (federation_.stop) return absl::OkStatus();
      studies_changed_ = false;
    }
    absl::StatusOr<std::shared_ptr<ActiveStudy>> run = StartStudy(record);
    if (!run.ok()) {
      log->error("study {} cannot start: {}", record.id, run.status().message());
      SV_RETURN_IF_ERROR(
          federation_.store->SetStudyState(record.id, kFailed, std::string(run.status().message())));
      continue;
    }
    if (record.state == kQueued) {
      SV_RETURN_IF_ERROR(federation_.store->SetStudyState(record.id, kRunning, ""));
    }
    log->info("study {} ('{}') is {} on data set {}", record.id, record.name,
              record.kind == "statistics" ? "computing statistics" : "training", record.dataset);
    {
      absl::MutexLock lock(&federation_.mutex);
      active_ = *run;
      federation_.active = active_.get();
    }
    absl::Status status = (*run)->Run();
    bool stopping = false;
    {
      absl::MutexLock lock(&federation_.mutex);
      federation_.active = nullptr;
      active_.reset();
      stopping = federation_.stop;
    }
    if (!status.ok()) return status;
    if (const std::string unserved = (*run)->unserved(); !unserved.empty()) {
      SV_RETURN_IF_ERROR(federation_.store->SetStudyState(record.id, kFailed, unserved));
    } else if ((*run)->finished()) {
      absl::Status outcome = (*run)->Outcome();
      SV_RETURN_IF_ERROR(federation_.store->SetStudyState(
          record.id, outcome.ok() ? kFinished : kFailed,
          outcome.ok() ? "" : std::string(outcome.message())));
    }
    if (stopping) return absl::OkStatus();  // a running study resumes at the next start
  }
}

absl::Status Coordinator::Run() {
  if (options_.standing) return RunStudies();
  std::shared_ptr<ActiveStudy> study;
  {
    absl::MutexLock lock(&federation_.mutex);
    study = active_;
  }
  SV_RETURN_IF_ERROR(study->Run());
  if (study->finished()) {
    absl::MutexLock lock(&federation_.mutex);
    done_ = true;
  }
  return absl::OkStatus();
}

absl::Status Coordinator::TrainingOutcome() {
  std::shared_ptr<ActiveStudy> study;
  {
    absl::MutexLock lock(&federation_.mutex);
    study = active_;
  }
  return study == nullptr ? absl::OkStatus() : study->Outcome();
}

void Coordinator::WaitUntilSitesToldDone(absl::Duration timeout) {
  absl::MutexLock lock(&federation_.mutex);
  std::function<bool()> all_told = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_.mutex) {
    for (const auto& [name, info] : federation_.clients) {
      if (info.online && !told_done_.contains(name)) return false;
    }
    return true;
  };
  federation_.WaitFor(all_told, absl::Now() + timeout);
}

void Coordinator::Stop() {
  absl::MutexLock lock(&federation_.mutex);
  federation_.stop = true;
}

}  // namespace samverka::coordinator
