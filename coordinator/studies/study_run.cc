// coordinator/studies/study_run.cc
#include "coordinator/studies/study_run.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/codec.h"
#include "common/logging.h"
#include "common/peer_text.h"
#include "common/status_macros.h"
#include "coordinator/model_helper.h"
#include "coordinator/reported_numbers.h"
#include "coordinator/studies/durable_sealing.h"

namespace samverka::coordinator {
namespace {

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

absl::StatusOr<std::unique_ptr<StudyRun>> StudyRun::Create(StudySetup setup,
                                                          FederationState* federation) {
  SV_RETURN_IF_ERROR(setup.options.Validate());
  auto study = std::unique_ptr<StudyRun>(new StudyRun(std::move(setup), federation));
  SV_RETURN_IF_ERROR(study->Initialise());
  return study;
}

StudyRun::StudyRun(StudySetup setup, FederationState* federation)
    : id_(std::move(setup.id)),
      dataset_(std::move(setup.dataset)),
      options_(std::move(setup.options)),
      store_(std::move(setup.store)),
      dir_(std::move(setup.dir)),
      task_model_(setup.task_model.empty() ? options_.model : std::move(setup.task_model)),
      federation_(federation) {}

StudyRun::~StudyRun() = default;

absl::Status StudyRun::Initialise() {
  auto log = Logger("coordinator");
  const std::string what = id_.empty() ? absl::StrCat("federation '", options_.federation_id, "'")
                                       : absl::StrCat("study ", id_);
  std::error_code error;
  std::filesystem::create_directories(dir_, error);
  if (error) return absl::InternalError(absl::StrCat("cannot create ", dir_, ": ", error.message()));
  // In a samverka-torch child: a bad model file or shape fails here.
  SV_ASSIGN_OR_RETURN(sealed_store_, SealedSumStore::Open(dir_));
  SV_ASSIGN_OR_RETURN(ModelParameters initial, BuildInitialModel(HelperFor(options_)));
  SV_ASSIGN_OR_RETURN(std::optional<Checkpoint> checkpoint, store_->LoadLatest());
  int64_t first_round = 1;
  if (checkpoint.has_value()) {
    SV_ASSIGN_OR_RETURN(ModelParameters restored, DecodeParameters(checkpoint->encoded_model));
    if (restored.layout != initial.layout) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the checkpoint of round ", checkpoint->round, " of ", what, " in ", options_.state_dir,
          " does not fit model '", options_.model, "'"));
    }
    initial = std::move(restored);
    SV_ASSIGN_OR_RETURN(std::vector<RoundRecord> last, store_->Rounds(1));
    first_round = std::max(checkpoint->round, last.empty() ? int64_t{0} : last[0].round) + 1;
    log->info("resuming {} at round {} from the checkpoint of round {} ({})", what, first_round,
              checkpoint->round, checkpoint->model_digest.substr(0, 16));
  }
  {
    // The starting model's encoding, made once (after a restart: the
    // checkpoint's own bytes) and freed before the engine encodes it.
    const std::string encoded = checkpoint.has_value() ? std::move(checkpoint->encoded_model)
                                                       : EncodeParameters(initial);
    if (!options_.test_dataset.empty()) {
      // A test set that cannot be read or does not fit the model fails
      // the start (before a new study stores anything), not a round.
      SV_ASSIGN_OR_RETURN(auto test_metrics, EvaluateOnTestSet(encoded));
      log->info("test set {}: the starting model has test_accuracy {:.4f}", options_.test_dataset,
                test_metrics["test_accuracy"]);
    }
    if (!checkpoint.has_value()) {
      SV_RETURN_IF_ERROR(store_->SaveInitial(encoded, Sha256Hex(encoded)));
      log->info("new {}: model {} with {} parameters", what, options_.model,
                initial.layout.num_elements());
    }
  }
  SV_ASSIGN_OR_RETURN(std::unique_ptr<Strategy> strategy, MakeStrategy(options_.strategy));
  SV_ASSIGN_OR_RETURN(engine_, RoundEngine::Create(options_.round, std::move(strategy),
                                                   std::move(initial), options_.seed + first_round,
                                                   first_round));
  {
    absl::MutexLock lock(&federation_->mutex);
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
  const std::filesystem::path dir(dir_);
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
  {
    // Sites already online that serve this study can be selected at once.
    absl::MutexLock lock(&federation_->mutex);
    for (const auto& [name, info] : federation_->clients) {
      if (info.online && Serves(info)) engine_->AddClient(name);
    }
  }
  nlohmann::json details = {{"first_round", first_round},
                            {"model", options_.model},
                            {"model_digest", engine_->global_digest()}};
  if (!id_.empty()) details["study"] = id_;
  return store_->Audit(id_.empty() ? "coordinator_start" : "study_start", options_.federation_id,
                       details);
}

absl::Status StudyRun::AppendMetricsRow(const RoundRecord& record) {
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

std::string StudyRun::TaskId(const std::string& name) const {
  return id_.empty() ? name : absl::StrCat(id_, "-", name);
}

SiteDataset StudyRun::SamplesOf(const std::string& site) const {
  auto it = federation_->clients.find(site);
  if (it == federation_->clients.end()) return {};
  // A single-run federation: the site's one data set.
  if (dataset_.empty()) return {it->second.train_samples, it->second.eval_samples};
  auto d = it->second.datasets.find(dataset_);
  return d == it->second.datasets.end() ? SiteDataset{} : d->second;
}

bool StudyRun::Serves(const ClientInfo& site) const {
  if (refused_.contains(site.name)) return false;
  if (dataset_.empty()) return site.train_samples > 0;
  auto d = site.datasets.find(dataset_);
  return d != site.datasets.end() && d->second.train_samples > 0;
}

void StudyRun::AddSite(const std::string& site) {
  auto it = federation_->clients.find(site);
  if (it != federation_->clients.end() && Serves(it->second)) engine_->AddClient(site);
}

void StudyRun::SiteRefused(const std::string& site) {
  refused_.insert(site);
  engine_->RemoveClient(site);
  if (dataset_.empty()) return;
  for (const auto& [name, info] : federation_->clients) {
    if (info.datasets.contains(dataset_) && !refused_.contains(name)) return;
  }
  // Waiting would be forever: only a new site (or a changed policy) could
  // serve it, and the operator can submit it again then.
  unserved_ = absl::StrCat("every site that names data set '", dataset_, "' refused the study (",
                           refused_.size(), " sites; `samverka study show` lists their reasons)");
  Logger("coordinator")->warn("study {}: {}", id_, unserved_);
}

std::string StudyRun::unserved() const {
  absl::MutexLock lock(&federation_->mutex);
  return unserved_;
}

void StudyRun::OnSiteOffline(const std::string& site) { engine_->RemoveClient(site); }

void StudyRun::OnTaskLost(const std::string& site, const ClientTask& task,
                          const std::string& reason) {
  if (task.study_id != id_) return;
  if (task.kind != TaskKind::kEvaluate) {  // training or consent
    if (secure_ != nullptr) {
      secure_->ReportDropout(site);
    } else {
      engine_->ReportFailure(site, task.round, reason);
    }
  } else if (eval_.has_value()) {
    eval_->answered.insert(site);
  }
}

void StudyRun::NoteTrainingFailure(const std::string& site, int64_t round) {
  if (dp_ != nullptr) return;  // DP accounting assumes uniform sampling
  SittingOut& out = sitting_out_[site];
  ++out.failures;
  out.until_round = round + (int64_t{1} << std::min(out.failures - 1, 4));
  Logger("coordinator")
      ->warn("site {} did not train in {} round(s) in a row; it sits out until round {} unless a "
             "round needs it to reach min_clients",
             site, out.failures, out.until_round);
}

std::optional<ClientTask> StudyRun::TakeConsentTask(const std::string& site) {
  auto it = consent_tasks_.find(site);
  if (it == consent_tasks_.end()) return std::nullopt;
  ClientTask task = std::move(it->second);
  consent_tasks_.erase(it);
  return task;
}

std::shared_ptr<const std::string> StudyRun::FindModel(const std::string& digest) const {
  auto it = models_.find(digest);
  return it == models_.end() ? nullptr : it->second;
}

int64_t StudyRun::next_round() const { return engine_->next_round(); }

void StudyRun::Abort() { aborted_ = true; }

bool StudyRun::finished() const {
  absl::MutexLock lock(&federation_->mutex);
  return finished_;
}

bool StudyRun::WaitFor(std::function<bool()> done, absl::Time deadline) {
  std::function<bool()> done_or_aborted = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex) {
    return aborted_ || !unserved_.empty() || done();
  };
  return federation_->WaitFor(done_or_aborted, deadline) && !aborted_ && unserved_.empty();
}

absl::Status StudyRun::CheckResult(const std::string& site, const ClientTask& task,
                                   const TaskOutcome& outcome) const {
  if (outcome.model_digest != task.model_digest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "result of ", site, " was computed from another model than the task's"));
  }
  if (outcome.kind != task.kind) {
    return absl::InvalidArgumentError("result kind does not match the task");
  }
  if (outcome.kind == TaskKind::kTrain && outcome.masked != (secure_ != nullptr)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", outcome.round,
        secure_ != nullptr ? " aggregates securely; a plain update is refused"
                           : " does not use secure aggregation; a masked input is refused"));
  }
  const SiteDataset samples = SamplesOf(site);
  const int64_t registered =
      outcome.kind == TaskKind::kEvaluate ? samples.eval_samples : samples.train_samples;
  return CheckResultSamples(outcome.kind, outcome.masked, outcome.num_samples, registered);
}

absl::Status StudyRun::SubmitResult(const std::string& site, const TaskOutcome& outcome,
                                    ReceivedUpdate received) {
  std::shared_ptr<SecureRound> secure;
  {
    absl::MutexLock lock(&federation_->mutex);
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
      eval_->answered.insert(site);
      federation_->assigned.erase(site);
      return absl::OkStatus();
    }
  }
  if (secure != nullptr) {
    // The task stays assigned: the site still has to answer the unmask stage.
    SV_RETURN_IF_ERROR(
        secure->SubmitMaskedInput(site, outcome.update, outcome.consent_commitment));
    return store_->Audit("masked_input", site,
                         {{"round", outcome.round},
                          {"bytes", outcome.update.size()},
                          {"digest", Sha256Hex(outcome.update)}});
  }
  SV_RETURN_IF_ERROR(engine_->SubmitUpdate(site, outcome.round, outcome.num_samples,
                                           received.values, received.bytes, outcome.metrics));
  // Absorbed: the last update's release of the mutex below may close the
  // round on this thread, which should not hold a model's worth more.
  std::vector<float>().swap(received.values);
  {
    absl::MutexLock lock(&federation_->mutex);
    federation_->assigned.erase(site);
  }
  return store_->Audit("update", site,
                       {{"round", outcome.round},
                        {"bytes", received.bytes},
                        {"update_digest", received.digest},
                        {"samples", outcome.num_samples}});
}

void StudyRun::Assign(const std::vector<std::string>& sites, const ClientTask& task) {
  for (const std::string& site : sites) {
    if (federation_->clients[site].online) {
      federation_->assigned[site] = task;
    } else if (task.kind == TaskKind::kTrain) {
      engine_->ReportFailure(site, task.round, "went offline before its task");
    } else if (eval_.has_value()) {
      eval_->answered.insert(site);
    }
  }
}

void StudyRun::EndOpenTasks(const std::function<bool(const ClientTask&)>& which) {
  for (auto it = federation_->assigned.begin(); it != federation_->assigned.end();) {
    if (it->second.study_id == id_ && which(it->second)) {
      it = federation_->assigned.erase(it);
    } else {
      ++it;
    }
  }
}

absl::Status StudyRun::Run() {
  auto log = Logger("coordinator");
  const std::string what = id_.empty() ? absl::StrCat("federation '", options_.federation_id, "'")
                                       : absl::StrCat("study ", id_);
  while (true) {
    {
      absl::MutexLock lock(&federation_->mutex);
      if (stopping()) {
        EndOpenTasks([](const ClientTask&) { return true; });
        return absl::OkStatus();
      }
      if (engine_->next_round() > options_.rounds) {
        finished_ = true;
        log->info("{} finished {} rounds; model {}", what, options_.rounds,
                  engine_->global_digest().substr(0, 16));
        nlohmann::json details = {{"model_digest", engine_->global_digest()}};
        if (!id_.empty()) details["study"] = id_;
        return store_->Audit(id_.empty() ? "federation_done" : "study_done",
                             options_.federation_id, details);
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
      absl::MutexLock lock(&federation_->mutex);
      if (engine_->next_round() > options_.rounds || wait <= absl::ZeroDuration()) continue;
      log->warn("{}: {} round(s) failed in a row; the next round starts in {:.1f} s", what,
                failed_in_a_row_, absl::ToDoubleSeconds(wait));
      std::function<bool()> never = [] { return false; };
      WaitFor(never, absl::Now() + wait);
    }
  }
}

absl::Status StudyRun::Outcome() {
  {
    absl::MutexLock lock(&federation_->mutex);
    if (!finished_) return absl::OkStatus();
  }
  SV_ASSIGN_OR_RETURN(std::vector<RoundRecord> rounds, store_->Rounds(int64_t{1} << 40));
  for (const RoundRecord& r : rounds) {
    if (r.succeeded) return absl::OkStatus();
  }
  std::string last_reason = rounds.empty() ? "" : rounds.front().failure_reason;
  return absl::FailedPreconditionError(absl::StrCat(
      id_.empty() ? absl::StrCat("federation '", options_.federation_id, "'")
                  : absl::StrCat("study ", id_),
      " finished its ", options_.rounds,
      " rounds without one successful round, so no model was trained",
      last_reason.empty() ? "" : absl::StrCat(" (the last round failed: ", last_reason, ")"),
      "; the coordinator's log and `samverka status` say why sites did not train"));
}

absl::Status StudyRun::RunRound() {
  auto log = Logger("coordinator");
  RoundRecord record;
  RoundPlan plan;
  std::optional<RoundResult> result;
  std::shared_ptr<SecureRound> secure;
  std::string secure_failure;
  SV_ASSIGN_OR_RETURN(const bool resumed, ResumeSealedRound(&plan, &record, &secure));
  if (resumed && secure == nullptr) return absl::OkStatus();  // stopping
  if (!resumed) {
    // Outside the federation's lock: the sites' calls go on meanwhile.
    SV_RETURN_IF_ERROR(engine_->PrepareRound());
    absl::MutexLock lock(&federation_->mutex);
    const int needed = started_ ? options_.round.min_clients
                                : std::max(options_.round.min_clients, options_.wait_for_clients);
    std::function<bool()> enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex) {
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
    plan.task.model = task_model_;
    plan.task.study_id = id_;
    plan.task.task_id = TaskId(plan.task.task_id);
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
    absl::MutexLock lock(&federation_->mutex);
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
        auto it = federation_->assigned.find(member);
        if (it == federation_->assigned.end() || it->second.round != plan.round) {
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
  bool halted = false;
  {
    absl::MutexLock lock(&federation_->mutex);
    std::function<bool()> closable = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex) {
      return engine_->ReadyToClose(absl::Now());
    };
    halted = !WaitFor(closable, absl::InfiniteFuture());
  }
  // Closing a round (the strategy's step, encoding the next model) takes
  // seconds for a large model: it runs without mutex_, so the sites' calls
  // (and their signs of life) go on meanwhile.
  result = engine_->Poll(halted ? absl::InfiniteFuture() : absl::Now());
  {
    absl::MutexLock lock(&federation_->mutex);
    secure_.reset();
    consent_tasks_.clear();
    EndOpenTasks([&](const ClientTask& t) { return t.round == plan.round; });
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
    absl::MutexLock lock(&federation_->mutex);
    for (const std::string& p : record.participants) sitting_out_.erase(p);
  }

  if (result->succeeded) {
    std::shared_ptr<const std::string> encoded = engine_->encoded_global_model();
    {
      absl::MutexLock lock(&federation_->mutex);
      // Keep the new model and the one before it (a slow client may still
      // be downloading it).
      std::map<std::string, std::shared_ptr<const std::string>> keep;
      keep[plan.task.model_digest] = plan.encoded_global;
      keep[result->model_digest] = encoded;
      models_ = std::move(keep);
      if (options_.federated_evaluation && !record.participants.empty()) {
        ClientTask eval_task = plan.task;
        eval_task.task_id = TaskId(absl::StrCat("round-", plan.round, "-evaluate"));
        eval_task.kind = TaskKind::kEvaluate;
        eval_task.model_digest = result->model_digest;
        eval_task.deadline_seconds = absl::ToDoubleSeconds(options_.eval_deadline);
        std::vector<std::string> evaluators;
        for (const std::string& p : record.participants) {
          if (federation_->clients[p].online && SamplesOf(p).eval_samples > 0) evaluators.push_back(p);
        }
        eval_ = EvalAccumulator{};
        eval_->expected = {evaluators.begin(), evaluators.end()};
        Assign(evaluators, eval_task);
        std::function<bool()> all_in = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex) {
          return eval_->answered.size() >= eval_->expected.size();
        };
        WaitFor(all_in, absl::Now() + options_.eval_deadline);
        EndOpenTasks([&](const ClientTask& t) { return t.task_id == eval_task.task_id; });
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

absl::StatusOr<std::shared_ptr<SecureRound>> StudyRun::StartSecureRound(const RoundPlan& plan) {
  if (!options_.secure_aggregation.enabled) return nullptr;
  SecureRound::Setup setup;
  setup.federation_id = options_.federation_id;
  setup.round = plan.round;
  setup.cohort = plan.cohort;
  setup.model_length = plan.num_values;
  setup.max_weight = 1;
  for (const std::string& member : plan.cohort) {
    setup.max_weight = std::max(setup.max_weight, static_cast<double>(SamplesOf(member).train_samples));
  }
  setup.model_digest = plan.task.model_digest;
  setup.ca_pem = options_.ca_pem;
  setup.start = absl::Now();
  setup.input_deadline = setup.start + options_.round.train_deadline;
  setup.min_clients = options_.round.min_clients;
  MakeSealingDurable(&setup, sealed_store_.get(), store_.get(), options_.federation_id, id_);
  SV_ASSIGN_OR_RETURN(std::unique_ptr<SecureRound> round,
                      SecureRound::Create(options_.secure_aggregation, std::move(setup)));
  return std::shared_ptr<SecureRound>(std::move(round));
}

absl::StatusOr<bool> StudyRun::ResumeSealedRound(RoundPlan* plan, RoundRecord* record,
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
  absl::MutexLock lock(&federation_->mutex);
  log->info("round {}: completing the secure sum of round {} from model {} (stored before the "
            "coordinator stopped): {} of {} sites have released it",
            engine_->next_round(), sealed->round, sealed->model_digest.substr(0, 16),
            contributors.size() - awaiting.size(), contributors.size());
  if (stopping()) return true;
  SV_ASSIGN_OR_RETURN(*plan, engine_->ResumeRound(absl::Now(), contributors));
  started_ = true;
  plan->task.model = task_model_;
  plan->task.study_id = id_;
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
  MakeSealingDurable(&setup, sealed_store_.get(), store_.get(), options_.federation_id, id_);
  SV_ASSIGN_OR_RETURN(std::unique_ptr<SecureRound> resumed,
                      SecureRound::Resume(options_.secure_aggregation, std::move(setup),
                                          std::move(*sealed), std::move(consents)));
  *secure = std::shared_ptr<SecureRound>(std::move(resumed));
  secure_ = *secure;
  ClientTask consent = plan->task;
  consent.task_id = TaskId(absl::StrCat("round-", plan->round, "-consent"));
  consent.kind = TaskKind::kConsent;
  consent.deadline_seconds = absl::ToDoubleSeconds(options_.secure_aggregation.stage_deadline);
  // Sites online now get their consent task at once, the others when they
  // next poll (PollTask).
  for (const std::string& site : awaiting) {
    consent_tasks_[site] = consent;
    consent_tasks_[site].secure_aggregation = *(*secure)->TaskFor(site);
    if (federation_->clients[site].online) {
      federation_->assigned[site] = consent_tasks_[site];
      consent_tasks_.erase(site);
    }
  }
  return true;
}

std::string StudyRun::FinishSecureRound(const RoundPlan& plan, SecureRound* secure,
                                           std::optional<double>* epsilon) {
  auto log = Logger("coordinator");
  while (!secure->Advance(absl::Now())) {
    {
      absl::MutexLock lock(&federation_->mutex);
      federation_->MarkDeadClients(absl::Now());
      if (stopping()) return "the coordinator is stopping or the study was aborted";
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

absl::StatusOr<std::map<std::string, double>> StudyRun::EvaluateOnTestSet(
    const std::string& encoded_model) {
  return EvaluateModel(HelperFor(options_), options_.test_dataset, encoded_model);
}

}  // namespace samverka::coordinator
