#include "coordinator/coordinator.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/codec.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/model_names.h"
#include "common/peer_text.h"
#include "coordinator/model_helper.h"
#include "coordinator/reported_numbers.h"

namespace samverka::coordinator {
namespace {

bool Call(std::function<bool()>* predicate) { return (*predicate)(); }

int64_t UnixMillis(absl::Time t) { return absl::ToUnixMillis(t); }

std::vector<std::string> MetricColumns() {
  return {"round",         "succeeded",     "clients",   "train_loss",  "eval_loss",
          "eval_accuracy", "eval_auc",      "test_loss", "test_accuracy", "test_auc",
          "seconds",       "bytes_up",      "bytes_down", "model_digest", "epsilon"};
}

MetricValue Metric(const std::map<std::string, double>& metrics, const std::string& key) {
  auto it = metrics.find(key);
  return it == metrics.end() ? MetricValue() : MetricValue(it->second);
}

// How to run the `samverka-torch model` children for `options`' model.
ModelHelperOptions HelperFor(const CoordinatorOptions& options) {
  return {options.model_helper.empty() ? DefaultModelHelperPath() : options.model_helper,
          options.model,
          options.input_shape,
          options.num_classes,
          options.seed,
          options.eval_deadline};
}

}  // namespace

absl::Status CoordinatorOptions::Validate() const {
  if (federation_id.empty()) return absl::InvalidArgumentError("federation_id must be set");
  if (rounds < 1) return absl::InvalidArgumentError("rounds must be >= 1");
  if (input_shape.empty()) return absl::InvalidArgumentError("input_shape must be set, e.g. [30]");
  if (num_classes < 2) return absl::InvalidArgumentError("num_classes must be >= 2");
  if (!class_labels.empty()) {
    if (static_cast<int64_t>(class_labels.size()) != num_classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "class_labels has ", class_labels.size(), " names but num_classes = ", num_classes));
    }
    std::set<std::string> distinct(class_labels.begin(), class_labels.end());
    if (distinct.size() != class_labels.size() || distinct.contains("")) {
      return absl::InvalidArgumentError("class_labels must be distinct, non-empty names");
    }
  }
  if (failed_round_backoff < absl::ZeroDuration() ||
      max_failed_round_backoff < failed_round_backoff) {
    return absl::InvalidArgumentError(
        "failed_round_backoff must be >= 0 and at most max_failed_round_backoff");
  }
  if (state_dir.empty()) return absl::InvalidArgumentError("state_dir must be set");
  if (heartbeat_interval <= absl::ZeroDuration() || eval_deadline <= absl::ZeroDuration() ||
      max_poll <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("heartbeat, evaluation and poll times must be positive");
  }
  if (wait_for_clients < 0) return absl::InvalidArgumentError("wait_for_clients must be >= 0");
  if (max_concurrent_uploads < 1 || max_concurrent_downloads < 1) {
    return absl::InvalidArgumentError(
        "max_concurrent_uploads and max_concurrent_downloads must be >= 1");
  }
  if (max_samples_per_site < 1) return absl::InvalidArgumentError("max_samples_per_site must be >= 1");
  if (transfer_stall <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("transfer_stall_seconds must be > 0");
  }
  SV_RETURN_IF_ERROR(CheckModelName(model));
  SV_RETURN_IF_ERROR(secure_aggregation.Validate());
  if (secure_aggregation.enabled) {
    if (ca_pem.empty()) {
      return absl::InvalidArgumentError(
          "secure aggregation needs the federation CA certificate (tls.ca_certificate)");
    }
    if (round.min_clients < 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          "secure aggregation needs min_clients >= 3, got ", round.min_clients,
          ": with two sites each one learns the other's update from the sum; raise "
          "min_clients or set secure_aggregation = false"));
    }
  }
  SV_RETURN_IF_ERROR(dp.Validate());
  if (dp.mode != security::dp::DpMode::kOff) {
    if (dp.mode == security::dp::DpMode::kDistributed) {
      return absl::InvalidArgumentError(
          "dp = \"distributed\" runs in the simulation only so far; use dp = \"central\" (the "
          "coordinator adds the noise to the secure sum)");
    }
    if (!secure_aggregation.enabled) {
      return absl::InvalidArgumentError(
          "dp = \"central\" needs secure_aggregation = true: the coordinator adds the noise to "
          "the secure sum, so no single update is ever seen without it");
    }
    if (dp.clip_norm > secure_aggregation.clip_range) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dp_clip_norm = ", dp.clip_norm, " is larger than secagg_clip_range = ",
          secure_aggregation.clip_range));
    }
    if (dp_population < 1) {
      return absl::InvalidArgumentError(
          "dp needs the number of sites that could be sampled: set dp_population (or "
          "allowed_clients)");
    }
    SV_RETURN_IF_ERROR(
        security::dp::DpFedAvgServer::Create(dp, dp_population, ExpectedCohort()).status());
  }
  SV_RETURN_IF_ERROR(strategy.ValidateFor(round.min_clients, secure_aggregation.enabled,
                                          round.train.proximal_mu));
  return round.Validate();
}

double CoordinatorOptions::ExpectedCohort() const {
  double n = round.clients_per_round > 0
                 ? round.clients_per_round
                 : std::ceil(round.fraction * static_cast<double>(dp_population));
  if (round.max_clients > 0) n = std::min<double>(n, round.max_clients);
  return std::max<double>(n, round.min_clients);
}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(CoordinatorOptions options) {
  SV_RETURN_IF_ERROR(options.Validate());
  SV_ASSIGN_OR_RETURN(std::unique_ptr<StateStore> store,
                      StateStore::Open(options.state_dir, options.federation_id));
  auto coordinator =
      std::unique_ptr<Coordinator>(new Coordinator(std::move(options), std::move(store)));
  SV_RETURN_IF_ERROR(coordinator->Initialise());
  return coordinator;
}

Coordinator::Coordinator(CoordinatorOptions options, std::unique_ptr<StateStore> store)
    : options_(std::move(options)),
      store_(std::move(store)),
      liveness_(3 * options_.heartbeat_interval + options_.max_poll) {}

Coordinator::~Coordinator() = default;

absl::Status Coordinator::Initialise() {
  auto log = Logger("coordinator");
  // In a samverka-torch child: a bad model file or shape fails start-up here.
  SV_ASSIGN_OR_RETURN(sealed_store_, SealedSumStore::Open(options_.state_dir));
  SV_ASSIGN_OR_RETURN(ModelParameters initial, BuildInitialModel(HelperFor(options_)));
  SV_ASSIGN_OR_RETURN(std::optional<Checkpoint> checkpoint, store_->LoadLatest());
  int64_t first_round = 1;
  if (checkpoint.has_value()) {
    SV_ASSIGN_OR_RETURN(ModelParameters restored, DecodeParameters(checkpoint->encoded_model));
    if (restored.layout != initial.layout) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the checkpoint of round ", checkpoint->round, " in ", options_.state_dir,
          " does not fit model '", options_.model, "'"));
    }
    initial = std::move(restored);
    SV_ASSIGN_OR_RETURN(std::vector<RoundRecord> last, store_->Rounds(1));
    first_round = std::max(checkpoint->round, last.empty() ? int64_t{0} : last[0].round) + 1;
    log->info("resuming federation '{}' at round {} from the checkpoint of round {} ({})",
              options_.federation_id, first_round, checkpoint->round,
              checkpoint->model_digest.substr(0, 16));
  }
  {
    // The starting model's encoding, made once (after a restart: the
    // checkpoint's own bytes) and freed before the engine encodes it.
    const std::string encoded = checkpoint.has_value() ? std::move(checkpoint->encoded_model)
                                                       : EncodeParameters(initial);
    if (!options_.test_dataset.empty()) {
      // A test set that cannot be read or does not fit the model fails
      // start-up (before a new federation stores anything), not a round.
      SV_ASSIGN_OR_RETURN(auto test_metrics, EvaluateOnTestSet(encoded));
      log->info("test set {}: the starting model has test_accuracy {:.4f}", options_.test_dataset,
                test_metrics["test_accuracy"]);
    }
    if (!checkpoint.has_value()) {
      SV_RETURN_IF_ERROR(store_->SaveInitial(encoded, Sha256Hex(encoded)));
      log->info("new federation '{}': model {} with {} parameters", options_.federation_id,
                options_.model, initial.layout.num_elements());
    }
  }
  SV_ASSIGN_OR_RETURN(std::unique_ptr<Strategy> strategy, MakeStrategy(options_.strategy));
  SV_ASSIGN_OR_RETURN(engine_, RoundEngine::Create(options_.round, std::move(strategy), std::move(initial),
                                                   options_.seed + first_round, first_round));
  {
    absl::MutexLock lock(&mutex_);
    models_[engine_->global_digest()] = engine_->encoded_global_model();
  }
  // Sealed sums of earlier models belong to rounds that were committed.
  SV_RETURN_IF_ERROR(sealed_store_->RemoveAllExcept(engine_->global_digest()));
  if (options_.dp.mode != security::dp::DpMode::kOff) {
    SV_ASSIGN_OR_RETURN(dp_, security::dp::DpFedAvgServer::Create(
                                 options_.dp, options_.dp_population, options_.ExpectedCohort()));
    // After a restart, the rounds already released count against the budget.
    SV_ASSIGN_OR_RETURN(std::vector<RoundRecord> done, store_->Rounds(int64_t{1} << 40));
    for (const RoundRecord& r : done) {
      if (r.succeeded) SV_RETURN_IF_ERROR(dp_->FinishRound(dp_->expected_clients()));
    }
    log->info("differential privacy: clip norm {}, noise multiplier {}, q = {:.4f}; epsilon so far "
              "{:.4f} (delta {})",
              dp_->clip_norm(), dp_->update_noise_multiplier(), dp_->sampling_rate(),
              dp_->spent().epsilon, dp_->delta());
  }
  const std::filesystem::path dir(options_.state_dir);
  // Rounds committed by a coordinator killed before it wrote their rows
  // (the chaos test found one kill in 25 there) get them now, from SQLite.
  std::set<int64_t> written;
  {
    std::ifstream jsonl(dir / "metrics.jsonl");
    for (std::string line; std::getline(jsonl, line);) {
      const nlohmann::json row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (row.is_object() && row.contains("round") && row["round"].is_number_integer()) {
        written.insert(row["round"].get<int64_t>());
      }
    }
  }
  SV_ASSIGN_OR_RETURN(metrics_, MetricsLog::Create(MetricColumns(), (dir / "metrics.jsonl").string(),
                                                   (dir / "metrics.csv").string(),
                                                   /*append=*/true));
  SV_ASSIGN_OR_RETURN(std::vector<RoundRecord> recorded, store_->Rounds(int64_t{1} << 40));
  for (auto it = recorded.rbegin(); it != recorded.rend(); ++it) {
    if (!it->succeeded || written.contains(it->round)) continue;
    log->warn("metrics.jsonl lacked committed round {} (the coordinator stopped between committing "
              "it and writing its row); written from the state database",
              it->round);
    SV_RETURN_IF_ERROR(AppendMetricsRow(*it));
  }
  return store_->Audit("coordinator_start", options_.federation_id,
                       {{"first_round", first_round}, {"model", options_.model},
                        {"model_digest", engine_->global_digest()}});
}

absl::Status Coordinator::AppendMetricsRow(const RoundRecord& record) {
  const double seconds = (record.finished_unix_ms - record.started_unix_ms) / 1000.0;
  return metrics_->Append(
      {record.round, int64_t{record.succeeded}, static_cast<int64_t>(record.participants.size()),
       Metric(record.metrics, "train_loss"), Metric(record.metrics, "eval_loss"),
       Metric(record.metrics, "eval_accuracy"), Metric(record.metrics, "eval_auc"),
       Metric(record.metrics, "test_loss"), Metric(record.metrics, "test_accuracy"),
       Metric(record.metrics, "test_auc"), seconds, static_cast<int64_t>(record.bytes_up),
       static_cast<int64_t>(record.bytes_down), record.model_digest,
       Metric(record.metrics, "epsilon")});
}

absl::Status Coordinator::Register(const std::string& client, int64_t train_samples,
                                   int64_t eval_samples) {
  SV_RETURN_IF_ERROR(
      CheckRegisteredSamples(train_samples, eval_samples, options_.max_samples_per_site));
  {
    absl::MutexLock lock(&mutex_);
    ClientInfo& info = clients_[client];
    const bool rejoin = info.online;
    info.name = client;
    info.train_samples = train_samples;
    info.eval_samples = eval_samples;
    info.online = true;
    liveness_.Touch(client, absl::Now());
    if (train_samples > 0) engine_->AddClient(client);
    if (!rejoin) {
      Logger("coordinator")->info("site {} joined ({} training, {} evaluation samples)", client,
                                  train_samples, eval_samples);
    }
  }
  // A site that registers again and again (a restart loop) is one row a
  // minute, with the count.
  int64_t held_back = 0;
  if (!joins_seen_.Admit(client, absl::Now(), &held_back)) return absl::OkStatus();
  nlohmann::json details = {{"train_samples", train_samples}, {"eval_samples", eval_samples}};
  if (held_back > 0) details["repeated"] = held_back;
  return store_->Audit("join", client, details);
}

FederationModel Coordinator::model_spec() const {
  return {options_.model, options_.input_shape, options_.num_classes, options_.class_labels};
}

absl::Status Coordinator::CheckSite(const std::string& client, const SiteOffer& offer) {
  const absl::Status fits = CheckSiteCanServe(model_spec(), offer);
  if (fits.ok()) return fits;
  const std::string reason(fits.message());
  Logger("coordinator")->warn(
      "refused site {}: it cannot train the federation's model: {}; it is not registered and no "
      "round waits for it", client, reason);
  {
    absl::MutexLock lock(&mutex_);
    if (auto it = clients_.find(client); it != clients_.end() && it->second.online) {
      // A site that was serving and came back unable to (its data changed).
      it->second.online = false;
      engine_->RemoveClient(client);
      if (auto task = assigned_.find(client); task != assigned_.end()) {
        if (task->second.kind == TaskKind::kEvaluate) {
          if (eval_.has_value()) eval_->answered.insert(client);
        } else if (secure_ != nullptr) {
          secure_->ReportDropout(client);
        } else {
          engine_->ReportFailure(client, task->second.round, reason);
        }
        assigned_.erase(task);
      }
    }
    refusals_.push_back(TaskRefusal{client, engine_->next_round(), "not registered: " + reason});
    if (refusals_.size() > 20) refusals_.pop_front();
  }
  store_->Audit("site_refused", client, {{"reason", reason}}).IgnoreError();
  return absl::FailedPreconditionError(
      absl::StrCat("the coordinator refused site ", client, ": ", reason));
}

absl::StatusOr<PollResult> Coordinator::PollTask(const std::string& client, absl::Duration wait) {
  absl::MutexLock lock(&mutex_);
  auto it = clients_.find(client);
  if (it == clients_.end() || !it->second.online) {
    return absl::NotFoundError(absl::StrCat("site ", client, " is not registered; register first"));
  }
  liveness_.Touch(client, absl::Now());
  if (auto consent = consent_tasks_.find(client);
      consent != consent_tasks_.end() && !assigned_.contains(client)) {
    // A site back after a restart: the stored sum still needs its consent.
    assigned_[client] = consent->second;
    consent_tasks_.erase(consent);
  }
  std::function<bool()> ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return assigned_.contains(client) || done_ || stop_;
  };
  const absl::Duration capped = std::clamp(wait, absl::ZeroDuration(), options_.max_poll);
  mutex_.AwaitWithTimeout(absl::Condition(&Call, &ready), capped);
  liveness_.Touch(client, absl::Now());
  PollResult result;
  result.federation_done = done_;
  if (done_) told_done_.insert(client);
  if (auto task = assigned_.find(client); task != assigned_.end()) result.task = task->second;
  return result;
}

absl::StatusOr<std::shared_ptr<const std::string>> Coordinator::Model(const std::string& digest) {
  absl::MutexLock lock(&mutex_);
  auto it = models_.find(digest);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("no model with digest ", digest.substr(0, 64)));
  }
  return it->second;
}

absl::StatusOr<std::shared_ptr<const std::string>> Coordinator::ModelToDownload(
    const std::string& client, const std::string& digest) {
  absl::MutexLock lock(&mutex_);
  auto task = assigned_.find(client);
  auto model = models_.find(digest);
  if (task == assigned_.end() || task->second.model_digest != digest ||
      task->second.kind == TaskKind::kConsent || model == models_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "site ", client, " has no open task on model ", PeerText(digest.substr(0, 16)),
        "; a model is downloaded for a task"));
  }
  return model->second;
}

absl::Status Coordinator::CheckResultLocked(const std::string& client, const TaskOutcome& outcome) {
  auto it = assigned_.find(client);
  if (it == assigned_.end() || it->second.task_id != outcome.task_id ||
      it->second.round != outcome.round) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no open task '", PeerText(outcome.task_id, 64), "' for ", client,
        " (round ", outcome.round, ")"));
  }
  if (outcome.model_digest != it->second.model_digest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "result of ", client, " was computed from another model than the task's"));
  }
  if (outcome.kind != it->second.kind) {
    return absl::InvalidArgumentError("result kind does not match the task");
  }
  if (outcome.kind == TaskKind::kTrain && outcome.masked != (secure_ != nullptr)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", outcome.round,
        secure_ != nullptr ? " aggregates securely; a plain update is refused"
                           : " does not use secure aggregation; a masked input is refused"));
  }
  auto info = clients_.find(client);
  const int64_t registered =
      info == clients_.end() ? 0
      : outcome.kind == TaskKind::kEvaluate ? info->second.eval_samples
                                            : info->second.train_samples;
  return CheckResultSamples(outcome.kind, outcome.masked, outcome.num_samples, registered);
}

absl::Status Coordinator::ExpectResult(const std::string& client, const TaskOutcome& outcome) {
  absl::MutexLock lock(&mutex_);
  return CheckResultLocked(client, outcome);
}

absl::Status Coordinator::SubmitResult(const std::string& client, const TaskOutcome& outcome,
                                       ReceivedUpdate received) {
  std::shared_ptr<SecureRound> secure;
  liveness_.Refresh(client, absl::Now());
  {
    absl::MutexLock lock(&mutex_);
    SV_RETURN_IF_ERROR(CheckResultLocked(client, outcome));
    if (outcome.masked) secure = secure_;
    if (outcome.kind == TaskKind::kEvaluate) {
      if (!eval_.has_value() || outcome.num_samples <= 0) {
        return absl::InvalidArgumentError("evaluation result without samples");
      }
      auto metric = [&](const char* key) -> std::optional<double> {
        auto m = outcome.metrics.find(key);
        if (m == outcome.metrics.end() || !std::isfinite(m->second)) return std::nullopt;
        return m->second;
      };
      std::optional<double> loss = metric("loss"), accuracy = metric("accuracy"), auc = metric("auc");
      if (!loss || !accuracy) return absl::InvalidArgumentError("evaluation result lacks loss or accuracy");
      const double n = static_cast<double>(outcome.num_samples);
      eval_->samples += n;
      eval_->loss += n * *loss;
      eval_->accuracy += n * *accuracy;
      if (auc) {
        eval_->auc += n * *auc;
        eval_->auc_weight += n;
      }
      eval_->answered.insert(client);
      assigned_.erase(client);
      return absl::OkStatus();
    }
  }
  if (secure != nullptr) {
    // The task stays assigned: the site still has to answer the unmask stage.
    SV_RETURN_IF_ERROR(
        secure->SubmitMaskedInput(client, outcome.update, outcome.consent_commitment));
    return store_->Audit("masked_input", client,
                         {{"round", outcome.round},
                          {"bytes", outcome.update.size()},
                          {"digest", Sha256Hex(outcome.update)}});
  }
  SV_RETURN_IF_ERROR(engine_->SubmitUpdate(client, outcome.round, outcome.num_samples,
                                           received.values, received.bytes, outcome.metrics));
  // Absorbed: the last update's release of mutex_ below may close the round
  // on this thread, which should not hold a model's worth more meanwhile.
  std::vector<float>().swap(received.values);
  {
    absl::MutexLock lock(&mutex_);
    assigned_.erase(client);
  }
  return store_->Audit("update", client,
                       {{"round", outcome.round},
                        {"bytes", received.bytes},
                        {"update_digest", received.digest},
                        {"samples", outcome.num_samples}});
}

absl::StatusOr<std::shared_ptr<SecureRound>> Coordinator::SecureRoundOf(
    const std::string& client, const std::string& task_id) {
  liveness_.Refresh(client, absl::Now());
  absl::MutexLock lock(&mutex_);
  auto it = assigned_.find(client);
  if (it == assigned_.end() || it->second.task_id != task_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("no open task '", task_id.substr(0, 64), "' for ", client));
  }
  if (secure_ == nullptr || !it->second.secure_aggregation.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("task '", task_id.substr(0, 64), "' does not use secure aggregation"));
  }
  return secure_;
}

absl::Status Coordinator::SecAggSend(const std::string& client, const std::string& task_id,
                                     SecureStage stage, std::string_view payload) {
  SV_ASSIGN_OR_RETURN(std::shared_ptr<SecureRound> secure, SecureRoundOf(client, task_id));
  SV_RETURN_IF_ERROR(secure->Send(client, stage, payload));
  if (stage == SecureStage::kConsent) {
    // The site's part is done; its task is no longer handed out.
    absl::MutexLock lock(&mutex_);
    if (auto it = assigned_.find(client); it != assigned_.end() && it->second.task_id == task_id) {
      assigned_.erase(it);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> Coordinator::SecAggFetch(const std::string& client,
                                                                    const std::string& task_id,
                                                                    SecureStage stage,
                                                                    absl::Duration wait) {
  SV_ASSIGN_OR_RETURN(std::shared_ptr<SecureRound> secure, SecureRoundOf(client, task_id));
  return secure->Fetch(client, stage, std::clamp(wait, absl::ZeroDuration(), options_.max_poll));
}

void Coordinator::Touch(const std::string& client) {
  // Never waits for mutex_: a sign of life counts the moment it arrives.
  liveness_.Refresh(client, absl::Now());
}

bool Coordinator::Heartbeat(const std::string& client, const std::string& task_id) {
  Touch(client);
  absl::MutexLock lock(&mutex_);
  auto info = clients_.find(client);
  if (info == clients_.end() || !info->second.online) return false;
  auto it = assigned_.find(client);
  return it != assigned_.end() && it->second.task_id == task_id;
}

void Coordinator::ReportTaskFailure(const std::string& client, const std::string& task_id,
                                    const std::string& reason) {
  absl::MutexLock lock(&mutex_);
  auto it = assigned_.find(client);
  if (it == assigned_.end() || it->second.task_id != task_id) return;
  if (it->second.kind != TaskKind::kEvaluate) {
    // In a secure round the round's end reports every non-contributor.
    if (secure_ != nullptr) {
      secure_->ReportDropout(client);
    } else {
      engine_->ReportFailure(client, it->second.round, reason);
    }
    if (it->second.kind == TaskKind::kTrain) NoteTrainingFailure(client, it->second.round);
  } else if (eval_.has_value()) {
    eval_->answered.insert(client);
  }
  refusals_.push_back(TaskRefusal{client, it->second.round, reason});
  if (refusals_.size() > 20) refusals_.pop_front();
  assigned_.erase(it);
  store_->Audit("task_failed", client, {{"task", task_id}, {"reason", reason}}).IgnoreError();
}

void Coordinator::NoteTrainingFailure(const std::string& client, int64_t round) {
  if (dp_ != nullptr) return;  // DP accounting assumes uniform sampling
  SittingOut& out = sitting_out_[client];
  ++out.failures;
  out.until_round = round + (int64_t{1} << std::min(out.failures - 1, 4));
  Logger("coordinator")
      ->warn("site {} did not train in {} round(s) in a row; it sits out until round {} unless a "
             "round needs it to reach min_clients",
             client, out.failures, out.until_round);
}

namespace {
constexpr char kKeySeparator = '\x1f';
}  // namespace

bool Coordinator::AuditRefusal(const std::string& peer, const std::string& reason) {
  const std::string host = PeerHost(peer);
  int64_t held_back = 0;
  if (!refusals_seen_.Admit(absl::StrCat(host, std::string(1, kKeySeparator), reason), absl::Now(),
                            &held_back)) {
    return false;
  }
  nlohmann::json details = {{"reason", reason}};
  if (held_back > 0) details["repeated"] = held_back;
  store_->Audit("refused", host, details).IgnoreError();
  return true;
}

void Coordinator::AuditHeldBack(absl::Time now) {
  for (const auto& [key, count] : refusals_seen_.TakeHeldBack(now)) {
    const size_t split = key.find(kKeySeparator);
    Logger("coordinator")->warn("refused {} more calls from {} in the last minute: {}", count,
                                key.substr(0, split), key.substr(split + 1));
    store_->Audit("refused", key.substr(0, split), {{"reason", key.substr(split + 1)}, {"repeated", count}})
        .IgnoreError();
  }
  for (const auto& [site, count] : joins_seen_.TakeHeldBack(now)) {
    store_->Audit("join", site, {{"repeated", count}}).IgnoreError();
  }
}

CoordinatorStatus Coordinator::Status() {
  CoordinatorStatus status;
  {
    absl::MutexLock lock(&mutex_);
    MarkDeadClients(absl::Now());
    status.federation_id = options_.federation_id;
    status.next_round = engine_->next_round();
    status.rounds = options_.rounds;
    status.done = done_;
    for (const auto& [name, info] : clients_) {
      status.clients.push_back(info);
      if (std::optional<absl::Time> seen = liveness_.LastSeen(name)) {
        status.clients.back().last_seen = *seen;
      }
    }
    status.refusals.assign(refusals_.begin(), refusals_.end());
  }
  absl::StatusOr<std::vector<RoundRecord>> rounds = store_->Rounds(10);
  if (rounds.ok()) status.recent_rounds = std::move(*rounds);
  return status;
}

void Coordinator::WaitUntilSitesToldDone(absl::Duration timeout) {
  absl::MutexLock lock(&mutex_);
  std::function<bool()> all_told = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    for (const auto& [name, info] : clients_) {
      if (info.online && !told_done_.contains(name)) return false;
    }
    return true;
  };
  WaitFor(all_told, absl::Now() + timeout);
}

void Coordinator::Stop() {
  absl::MutexLock lock(&mutex_);
  stop_ = true;
}

void Coordinator::MarkDeadClients(absl::Time now) {
  for (const auto& [name, silence] : liveness_.TakeSilent(now)) {
    ClientInfo& info = clients_[name];
    if (!info.online) continue;
    info.online = false;
    info.last_seen = now - silence;
    engine_->RemoveClient(name);
    Logger("coordinator")->warn("site {} went silent ({} s); taken for offline", name,
                                absl::ToInt64Seconds(silence));
    if (auto it = assigned_.find(name); it != assigned_.end()) {
      if (it->second.kind != TaskKind::kEvaluate) {  // training or consent
        if (secure_ != nullptr) {
          secure_->ReportDropout(name);
        } else {
          engine_->ReportFailure(name, it->second.round, "went offline");
        }
      } else if (eval_.has_value()) {
        eval_->answered.insert(name);
      }
      assigned_.erase(it);
    }
  }
}

bool Coordinator::WaitFor(std::function<bool()> done, absl::Time deadline) {
  // Wakes at least once a second to notice silent clients.
  while (true) {
    MarkDeadClients(absl::Now());
    AuditHeldBack(absl::Now());
    if (done() || stop_) return !stop_;
    const absl::Time now = absl::Now();
    if (now >= deadline) return false;
    mutex_.AwaitWithDeadline(absl::Condition(&Call, &done),
                             std::min(deadline, now + absl::Seconds(1)));
  }
}

void Coordinator::Assign(const std::vector<std::string>& clients, const ClientTask& task) {
  for (const std::string& client : clients) {
    if (clients_[client].online) {
      assigned_[client] = task;
    } else if (task.kind == TaskKind::kTrain) {
      engine_->ReportFailure(client, task.round, "went offline before its task");
    } else if (eval_.has_value()) {
      eval_->answered.insert(client);
    }
  }
}

absl::Status Coordinator::Run() {
  auto log = Logger("coordinator");
  while (true) {
    {
      absl::MutexLock lock(&mutex_);
      if (stop_) return absl::OkStatus();
      if (engine_->next_round() > options_.rounds) {
        done_ = true;
        log->info("federation '{}' finished {} rounds; model {}", options_.federation_id,
                  options_.rounds, engine_->global_digest().substr(0, 16));
        return store_->Audit("federation_done", options_.federation_id,
                             {{"model_digest", engine_->global_digest()}});
      }
    }
    SV_RETURN_IF_ERROR(RunRound());
    if (failed_in_a_row_ > 0) {
      // Failing rounds back off instead of spinning through the rounds.
      absl::Duration wait = options_.failed_round_backoff;
      for (int i = 1; i < failed_in_a_row_ && wait < options_.max_failed_round_backoff; ++i) {
        wait *= 2;
      }
      wait = std::min(wait, options_.max_failed_round_backoff);
      absl::MutexLock lock(&mutex_);
      if (engine_->next_round() > options_.rounds || wait <= absl::ZeroDuration()) continue;
      log->warn("{} round(s) failed in a row; the next round starts in {:.1f} s",
                failed_in_a_row_, absl::ToDoubleSeconds(wait));
      std::function<bool()> never = [] { return false; };
      WaitFor(never, absl::Now() + wait);
    }
  }
}

absl::Status Coordinator::TrainingOutcome() {
  {
    absl::MutexLock lock(&mutex_);
    if (!done_) return absl::OkStatus();
  }
  SV_ASSIGN_OR_RETURN(std::vector<RoundRecord> rounds, store_->Rounds(int64_t{1} << 40));
  for (const RoundRecord& r : rounds) {
    if (r.succeeded) return absl::OkStatus();
  }
  std::string last_reason = rounds.empty() ? "" : rounds.front().failure_reason;
  return absl::FailedPreconditionError(absl::StrCat(
      "federation '", options_.federation_id, "' finished its ", options_.rounds,
      " rounds without one successful round, so no model was trained",
      last_reason.empty() ? "" : absl::StrCat(" (the last round failed: ", last_reason, ")"),
      "; the coordinator's log and `samverka status` say why sites did not train"));
}

absl::Status Coordinator::RunRound() {
  auto log = Logger("coordinator");
  RoundRecord record;
  RoundPlan plan;
  std::optional<RoundResult> result;
  std::shared_ptr<SecureRound> secure;
  std::string secure_failure;
  SV_ASSIGN_OR_RETURN(const bool resumed, ResumeSealedRound(&plan, &record, &secure));
  if (resumed && secure == nullptr) return absl::OkStatus();  // stopping
  if (!resumed) {
    absl::MutexLock lock(&mutex_);
    const int needed = started_ ? options_.round.min_clients
                                : std::max(options_.round.min_clients, options_.wait_for_clients);
    std::function<bool()> enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      return static_cast<int>(engine_->clients().size()) >= needed;
    };
    if (!enough()) {
      log->info("round {}: waiting for {} sites ({} online)", engine_->next_round(), needed,
                engine_->clients().size());
    }
    if (!WaitFor(enough, absl::InfiniteFuture())) return absl::OkStatus();
    std::set<std::string> sitting_out;
    for (const auto& [site, out] : sitting_out_) {
      if (out.until_round >= engine_->next_round()) sitting_out.insert(site);
    }
    SV_ASSIGN_OR_RETURN(plan, engine_->StartRound(absl::Now(), sitting_out));
    started_ = true;
    plan.task.model = options_.model;
    plan.task.deadline_seconds = absl::ToDoubleSeconds(options_.round.train_deadline);
    plan.task.cohort_size = static_cast<int>(plan.cohort.size());
    if (dp_ != nullptr) {
      plan.task.dp = DpOptions{dp_->clip_norm(), dp_->update_noise_multiplier(),
                               dp_->sampling_rate(), dp_->delta()};
    }
    record.round = plan.round;
    record.started_unix_ms = UnixMillis(absl::Now());
  }
  // Audited before the tasks are handed out, so no result precedes its task
  // in the log.
  for (const std::string& member : plan.cohort) {
    if (resumed) break;
    SV_RETURN_IF_ERROR(store_->Audit("task", member, {{"round", plan.round},
                                                      {"kind", "train"},
                                                      {"model_digest", plan.task.model_digest}}));
  }
  if (!resumed) {
    absl::MutexLock lock(&mutex_);
    absl::StatusOr<std::shared_ptr<SecureRound>> made = StartSecureRound(plan);
    if (!made.ok()) {
      // Nobody gets a task; the round fails with this reason.
      secure_failure = absl::StrCat("cannot set up secure aggregation: ", made.status().message());
      for (const std::string& member : plan.cohort) {
        engine_->ReportFailure(member, plan.round, secure_failure);
      }
    } else {
      secure = std::move(*made);
      secure_ = secure;
      Assign(plan.cohort, plan.task);
      // Sites see their tasks only once the lock is released, with these
      // settings in them.
      for (const std::string& member : plan.cohort) {
        if (secure == nullptr) break;  // plain aggregation
        auto it = assigned_.find(member);
        if (it == assigned_.end() || it->second.round != plan.round) {
          secure->ReportDropout(member);
        } else {
          it->second.secure_aggregation = *secure->TaskFor(member);
        }
      }
    }
    log->info("round {}/{}: training on {} sites with model {}{}", plan.round, options_.rounds,
              plan.cohort.size(), plan.task.model_digest.substr(0, 16),
              secure != nullptr ? ", secure aggregation" : "");
  }
  std::optional<double> epsilon;
  if (secure != nullptr) secure_failure = FinishSecureRound(plan, secure.get(), &epsilon);
  bool stopping = false;
  {
    absl::MutexLock lock(&mutex_);
    std::function<bool()> closable = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      return engine_->ReadyToClose(absl::Now());
    };
    stopping = !WaitFor(closable, absl::InfiniteFuture());
  }
  // Closing a round (the strategy's step, encoding the next model) takes
  // seconds for a large model: it runs without mutex_, so the sites' calls
  // (and their signs of life) go on meanwhile.
  result = engine_->Poll(stopping ? absl::InfiniteFuture() : absl::Now());
  {
    absl::MutexLock lock(&mutex_);
    secure_.reset();
    consent_tasks_.clear();
    for (const std::string& member : plan.cohort) {
      if (auto it = assigned_.find(member); it != assigned_.end() && it->second.round == plan.round) {
        assigned_.erase(it);
      }
    }
  }
  if (!result->succeeded && !secure_failure.empty()) result->failure_reason = secure_failure;
  failed_in_a_row_ = result->succeeded ? 0 : failed_in_a_row_ + 1;
  record.succeeded = result->succeeded;
  record.failure_reason = result->failure_reason;
  record.model_digest = result->model_digest;
  record.bytes_up = result->bytes_up;
  record.bytes_down = result->bytes_down;
  record.metrics["train_loss"] = result->train_loss;
  if (epsilon.has_value()) record.metrics["epsilon"] = *epsilon;
  for (const std::string& member : plan.cohort) {
    if (std::find(result->missing.begin(), result->missing.end(), member) == result->missing.end()) {
      record.participants.push_back(member);
    }
  }
  {
    absl::MutexLock lock(&mutex_);
    for (const std::string& p : record.participants) sitting_out_.erase(p);
  }

  if (result->succeeded) {
    std::shared_ptr<const std::string> encoded = engine_->encoded_global_model();
    {
      absl::MutexLock lock(&mutex_);
      // Keep the new model and the one before it (a slow client may still
      // be downloading it).
      std::map<std::string, std::shared_ptr<const std::string>> keep;
      keep[plan.task.model_digest] = plan.encoded_global;
      keep[result->model_digest] = encoded;
      models_ = std::move(keep);
      if (options_.federated_evaluation && !record.participants.empty()) {
        ClientTask eval_task = plan.task;
        eval_task.task_id = absl::StrCat("round-", plan.round, "-evaluate");
        eval_task.kind = TaskKind::kEvaluate;
        eval_task.model_digest = result->model_digest;
        eval_task.deadline_seconds = absl::ToDoubleSeconds(options_.eval_deadline);
        std::vector<std::string> evaluators;
        for (const std::string& p : record.participants) {
          if (clients_[p].online && clients_[p].eval_samples > 0) evaluators.push_back(p);
        }
        eval_ = EvalAccumulator{};
        eval_->expected = {evaluators.begin(), evaluators.end()};
        Assign(evaluators, eval_task);
        std::function<bool()> all_in = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
          return eval_->answered.size() >= eval_->expected.size();
        };
        WaitFor(all_in, absl::Now() + options_.eval_deadline);
        for (const std::string& e : evaluators) {
          if (auto it = assigned_.find(e); it != assigned_.end() && it->second.task_id == eval_task.task_id) {
            assigned_.erase(it);
          }
        }
        if (eval_->samples > 0) {
          record.metrics["eval_loss"] = eval_->loss / eval_->samples;
          record.metrics["eval_accuracy"] = eval_->accuracy / eval_->samples;
          record.metrics["eval_samples"] = eval_->samples;
          if (eval_->auc_weight > 0) record.metrics["eval_auc"] = eval_->auc / eval_->auc_weight;
        }
        eval_.reset();
      }
    }
    if (!options_.test_dataset.empty()) {
      // The round's model stands whatever the test set says; a failed
      // evaluation (the helper killed, past eval_deadline_seconds) costs
      // only this round's test metrics, not the federation.
      absl::StatusOr<std::map<std::string, double>> test_metrics = EvaluateOnTestSet(*encoded);
      if (test_metrics.ok()) {
        record.metrics.insert(test_metrics->begin(), test_metrics->end());
      } else {
        log->error("round {}: no test metrics this round: {}", plan.round,
                   test_metrics.status().message());
      }
    }
    record.finished_unix_ms = UnixMillis(absl::Now());
    SV_RETURN_IF_ERROR(store_->CommitRound(record, *encoded));
    // Committed: the sealed sum of this round's start model is spent.
    if (absl::Status removed = sealed_store_->Remove(plan.task.model_digest); !removed.ok()) {
      log->warn("round {}: {}", plan.round, removed.message());
    }
  } else {
    log->warn("round {} failed: {}; the next round starts from model {}", plan.round,
              result->failure_reason, result->model_digest.substr(0, 16));
    record.finished_unix_ms = UnixMillis(absl::Now());
    SV_RETURN_IF_ERROR(store_->RecordFailedRound(record));
  }
  const double seconds = (record.finished_unix_ms - record.started_unix_ms) / 1000.0;
  SV_RETURN_IF_ERROR(AppendMetricsRow(record));
  std::string summary = absl::StrCat("round ", record.round, "/", options_.rounds, ": ",
                                     record.participants.size(), " sites");
  for (const char* key :
       {"train_loss", "eval_accuracy", "eval_auc", "test_accuracy", "test_auc", "epsilon"}) {
    if (auto it = record.metrics.find(key); it != record.metrics.end()) {
      absl::StrAppend(&summary, ", ", key, " ", absl::StrFormat("%.4f", it->second));
    }
  }
  log->info("{}, {:.1f} s{}", summary, seconds, record.succeeded ? "" : " (failed)");
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<SecureRound>> Coordinator::StartSecureRound(const RoundPlan& plan) {
  if (!options_.secure_aggregation.enabled) return nullptr;
  SecureRound::Setup setup;
  setup.federation_id = options_.federation_id;
  setup.round = plan.round;
  setup.cohort = plan.cohort;
  setup.model_length = plan.num_values;
  setup.max_weight = 1;
  for (const std::string& member : plan.cohort) {
    setup.max_weight = std::max(setup.max_weight, static_cast<double>(clients_[member].train_samples));
  }
  setup.model_digest = plan.task.model_digest;
  setup.ca_pem = options_.ca_pem;
  setup.start = absl::Now();
  setup.input_deadline = setup.start + options_.round.train_deadline;
  setup.min_clients = options_.round.min_clients;
  AddSealing(setup);
  SV_ASSIGN_OR_RETURN(std::unique_ptr<SecureRound> round,
                      SecureRound::Create(options_.secure_aggregation, std::move(setup)));
  return std::shared_ptr<SecureRound>(std::move(round));
}

void Coordinator::AddSealing(SecureRound::Setup& setup) {
  // Durable before anything else: the sealed sum before any site is asked to
  // release it, each consent seed before it counts. A restart then completes
  // the round from them instead of running it again.
  const int64_t round = setup.round;
  const std::string digest = setup.model_digest;
  setup.seal = [this, round](const SealedSum& sealed) {
    SV_RETURN_IF_ERROR(sealed_store_->Save(sealed));
    return store_->Audit("secure_sum_sealed", options_.federation_id,
                         {{"round", round},
                          {"model_digest", sealed.model_digest},
                          {"instance", sealed.instance},
                          {"contributors", sealed.contributors.size()}});
  };
  setup.on_consent = [this, round, digest, cohort = setup.cohort](
                         uint32_t participant, const security::SecretBytes& seed) {
    SV_RETURN_IF_ERROR(sealed_store_->SaveConsent(digest, participant, seed));
    return store_->Audit("secure_consent", cohort[participant - 1], {{"round", round}});
  };
}

absl::StatusOr<bool> Coordinator::ResumeSealedRound(RoundPlan* plan, RoundRecord* record,
                                                    std::shared_ptr<SecureRound>* secure) {
  auto log = Logger("coordinator");
  if (!options_.secure_aggregation.enabled) return false;
  SV_ASSIGN_OR_RETURN(std::optional<SealedSum> sealed,
                      sealed_store_->Load(engine_->global_digest()));
  if (!sealed.has_value()) return false;
  SV_ASSIGN_OR_RETURN(auto consents, sealed_store_->LoadConsents(sealed->model_digest));
  std::vector<std::string> contributors, awaiting;
  for (uint32_t id : sealed->contributors) {
    if (id < 1 || id > sealed->cohort.size()) {
      return absl::DataLossError("a sealed sum names a contributor outside its cohort");
    }
    contributors.push_back(sealed->cohort[id - 1]);
    if (!consents.contains(id)) awaiting.push_back(sealed->cohort[id - 1]);
  }
  absl::MutexLock lock(&mutex_);
  log->info("round {}: completing the secure sum of round {} from model {} (stored before the "
            "coordinator stopped): {} of {} sites have released it",
            engine_->next_round(), sealed->round, sealed->model_digest.substr(0, 16),
            contributors.size() - awaiting.size(), contributors.size());
  if (stop_) return true;
  SV_ASSIGN_OR_RETURN(*plan, engine_->ResumeRound(absl::Now(), contributors));
  started_ = true;
  plan->task.model = options_.model;
  plan->task.cohort_size = static_cast<int>(plan->cohort.size());
  record->round = plan->round;
  record->started_unix_ms = UnixMillis(absl::Now());
  SecureRound::Setup setup;
  setup.federation_id = options_.federation_id;
  setup.round = plan->round;
  setup.cohort = sealed->cohort;
  setup.model_length = plan->num_values;
  setup.model_digest = sealed->model_digest;
  setup.ca_pem = options_.ca_pem;
  setup.start = absl::Now();
  setup.min_clients = options_.round.min_clients;
  AddSealing(setup);
  SV_ASSIGN_OR_RETURN(std::unique_ptr<SecureRound> resumed,
                      SecureRound::Resume(options_.secure_aggregation, std::move(setup),
                                          std::move(*sealed), std::move(consents)));
  *secure = std::shared_ptr<SecureRound>(std::move(resumed));
  secure_ = *secure;
  ClientTask consent = plan->task;
  consent.task_id = absl::StrCat("round-", plan->round, "-consent");
  consent.kind = TaskKind::kConsent;
  consent.deadline_seconds = absl::ToDoubleSeconds(options_.secure_aggregation.stage_deadline);
  // Sites online now get their consent task at once, the others when they
  // next poll (PollTask).
  for (const std::string& site : awaiting) {
    consent_tasks_[site] = consent;
    consent_tasks_[site].secure_aggregation = *(*secure)->TaskFor(site);
    if (clients_[site].online) {
      assigned_[site] = consent_tasks_[site];
      consent_tasks_.erase(site);
    }
  }
  return true;
}

std::string Coordinator::FinishSecureRound(const RoundPlan& plan, SecureRound* secure,
                                           std::optional<double>* epsilon) {
  auto log = Logger("coordinator");
  while (!secure->Advance(absl::Now())) {
    {
      absl::MutexLock lock(&mutex_);
      MarkDeadClients(absl::Now());
      if (stop_) return "the coordinator is stopping";
    }
    secure->WaitForChange(absl::Seconds(1));
  }
  absl::StatusOr<SecureRoundResult> sum = secure->result();
  absl::Status submitted = sum.status();
  if (sum.ok() && dp_ != nullptr) {
    // DP-FedAvg: clipped updates with weight 1, Gaussian noise on the sum,
    // divided by the expected cohort size (McMahan et al. 2018).
    submitted = dp_->AddCentralNoise(sum->weighted_sum);
    sum->total_weight = dp_->expected_clients();
  }
  if (submitted.ok()) {
    submitted = engine_->SubmitAggregate(plan.round, sum->contributors, sum->weighted_sum,
                                         sum->total_weight, sum->weighted_train_loss,
                                         sum->masked_bytes);
  }
  if (submitted.ok() && dp_ != nullptr) {
    // The noised sum is released: the round counts against the budget.
    if (absl::Status finished = dp_->FinishRound(sum->weighted_within_clip); !finished.ok()) {
      log->error("round {}: {}", plan.round, finished.message());
    }
    *epsilon = dp_->spent().epsilon;
  }
  const std::string reason =
      submitted.ok() ? "" : absl::StrCat("secure aggregation aborted: ", submitted.message());
  for (const std::string& member : plan.cohort) {
    if (!sum.ok() || std::find(sum->contributors.begin(), sum->contributors.end(), member) ==
                         sum->contributors.end()) {
      engine_->ReportFailure(member, plan.round,
                             reason.empty() ? "dropped out of secure aggregation" : reason);
    }
  }
  if (!submitted.ok()) return reason;
  log->info("round {}: unmasked the sum of {} sites' updates ({} neighbours, threshold {}); "
            "no single update was revealed",
            plan.round, sum->contributors.size(), sum->parameters.num_neighbours,
            sum->parameters.threshold);
  if (sum->clipped_fraction > 0) {
    log->warn("round {}: {:.4f}% of update values were beyond the clipping range +-{} and were "
              "clipped; consider a larger secagg_clip_range",
              plan.round, 100 * sum->clipped_fraction, options_.secure_aggregation.clip_range);
  }
  store_->Audit("secure_aggregate", options_.federation_id,
                {{"round", plan.round},
                 {"model_digest", plan.task.model_digest},
                 {"instance", sum->instance},
                 {"contributors", sum->contributors.size()},
                 {"dropped", sum->dropped.size()},
                 {"neighbours", sum->parameters.num_neighbours},
                 {"threshold", sum->parameters.threshold}})
      .IgnoreError();
  return "";
}

absl::StatusOr<std::map<std::string, double>> Coordinator::EvaluateOnTestSet(
    const std::string& encoded_model) {
  return EvaluateModel(HelperFor(options_), options_.test_dataset, encoded_model);
}

}  // namespace samverka::coordinator
