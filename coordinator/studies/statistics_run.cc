// coordinator/studies/statistics_run.cc
#include "coordinator/studies/statistics_run.h"

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/codec.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "coordinator/studies/durable_sealing.h"
#include "statistics/privacy.h"
#include "statistics/site_statistics.h"
#include "statistics/summary.h"

namespace samverka::coordinator {

absl::StatusOr<std::unique_ptr<StatisticsRun>> StatisticsRun::Create(StatisticsSetup setup,
                                                                     FederationState* federation) {
  SV_RETURN_IF_ERROR(setup.options.secure_aggregation.Validate());
  std::error_code error;
  std::filesystem::create_directories(setup.dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot create ", setup.dir, ": ", error.message()));
  }
  auto run = std::unique_ptr<StatisticsRun>(new StatisticsRun(std::move(setup), federation));
  SV_ASSIGN_OR_RETURN(run->sealed_store_, SealedSumStore::Open(run->dir_));
  SV_RETURN_IF_ERROR(run->store_->Audit("study_start", run->options_.federation_id,
                                        {{"study", run->id_},
                                         {"kind", "statistics"},
                                         {"manifest_digest", run->digest_},
                                         {"vector_length", run->length_}}));
  return run;
}

StatisticsRun::StatisticsRun(StatisticsSetup setup, FederationState* federation)
    : id_(std::move(setup.id)),
      dataset_(std::move(setup.dataset)),
      options_(std::move(setup.options)),
      spec_(std::move(setup.spec)),
      digest_(std::move(setup.manifest_digest)),
      dp_delta_(setup.dp_delta),
      dp_sites_(setup.dp_sites),
      length_(statistics::VectorLength(spec_)),
      store_(std::move(setup.store)),
      dir_(std::move(setup.dir)),
      federation_(federation) {}

StatisticsRun::~StatisticsRun() = default;

bool StatisticsRun::Serves(const ClientInfo& site) const {
  return site.online && !refused_.contains(site.name) && site.datasets.contains(dataset_);
}

void StatisticsRun::Abort() { aborted_ = true; }

bool StatisticsRun::finished() const {
  absl::MutexLock lock(&federation_->mutex);
  return finished_;
}

std::string StatisticsRun::unserved() const {
  absl::MutexLock lock(&federation_->mutex);
  return unserved_;
}

absl::Status StatisticsRun::Outcome() {
  if (failure_.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "statistics study ", id_, " released nothing: ", failure_,
      "; `samverka study show` lists the sites' refusals"));
}

void StatisticsRun::SiteRefused(const std::string& site) {
  refused_.insert(site);
  for (const auto& [name, info] : federation_->clients) {
    if (info.datasets.contains(dataset_) && !refused_.contains(name)) return;
  }
  unserved_ = absl::StrCat("every site that names data set '", dataset_, "' refused the study (",
                           refused_.size(), " sites; `samverka study show` lists their reasons)");
  Logger("coordinator")->warn("study {}: {}", id_, unserved_);
}

void StatisticsRun::OnTaskLost(const std::string& site, const ClientTask& task,
                               const std::string&) {
  if (task.study_id == id_ && secure_ != nullptr) secure_->ReportDropout(site);
}

absl::Status StatisticsRun::CheckResult(const std::string& site, const ClientTask& task,
                                        const TaskOutcome& outcome) const {
  if (outcome.kind != TaskKind::kStatistics || task.kind != TaskKind::kStatistics) {
    return absl::InvalidArgumentError("result kind does not match the task");
  }
  if (!outcome.masked || outcome.model_digest != digest_ || outcome.num_samples != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the result of ", site,
        " is not a masked vector of this statistics study (a site's numbers leave it only "
        "masked)"));
  }
  return absl::OkStatus();
}

absl::Status StatisticsRun::SubmitResult(const std::string& site, const TaskOutcome& outcome,
                                         ReceivedUpdate) {
  std::shared_ptr<SecureRound> secure;
  {
    absl::MutexLock lock(&federation_->mutex);
    secure = secure_;
  }
  if (secure == nullptr) return absl::FailedPreconditionError("the study's secure sum has ended");
  // The task stays assigned: the site still has to answer the unmask stage.
  SV_RETURN_IF_ERROR(secure->SubmitMaskedInput(site, outcome.update, outcome.consent_commitment));
  return store_->Audit("masked_input", site,
                       {{"study", id_},
                        {"round", 1},
                        {"bytes", outcome.update.size()},
                        {"digest", Sha256Hex(outcome.update)}});
}

void StatisticsRun::EndOpenTasks() {
  for (auto it = federation_->assigned.begin(); it != federation_->assigned.end();) {
    it = it->second.study_id == id_ ? federation_->assigned.erase(it) : std::next(it);
  }
}

absl::Status StatisticsRun::Run() {
  auto log = Logger("coordinator");
  SV_ASSIGN_OR_RETURN(std::optional<Checkpoint> released, store_->LoadLatest());
  if (released.has_value() && released->round >= 1) {
    // Released before the coordinator stopped.
    absl::MutexLock lock(&federation_->mutex);
    finished_ = true;
    return absl::OkStatus();
  }
  RoundRecord record;
  record.round = 1;
  record.started_unix_ms = absl::ToUnixMillis(absl::Now());
  // A sum sealed before the coordinator stopped is completed, not run
  // again (sites that released it would refuse a second one).
  SV_ASSIGN_OR_RETURN(absl::StatusOr<std::shared_ptr<SecureRound>> secure, ResumeSealed());
  if (secure.ok() && *secure == nullptr) {
    std::vector<std::string> cohort;
    {
      absl::MutexLock lock(&federation_->mutex);
      const int needed = std::max({3, options_.round.min_clients, options_.wait_for_clients});
      std::function<bool()> enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(federation_->mutex) {
        if (stopping()) return true;
        int serving = 0;
        for (const auto& [name, info] : federation_->clients) serving += Serves(info) ? 1 : 0;
        return serving >= needed;
      };
      if (!enough()) {
        log->info("study {}: waiting for {} sites that name data set '{}'", id_, needed, dataset_);
      }
      if (!federation_->WaitFor(enough, absl::InfiniteFuture()) || stopping()) {
        EndOpenTasks();
        return absl::OkStatus();
      }
      for (const auto& [name, info] : federation_->clients) {
        if (!Serves(info)) continue;
        if (options_.round.max_clients > 0 &&
            static_cast<int>(cohort.size()) >= options_.round.max_clients) {
          break;
        }
        cohort.push_back(name);
      }
    }
    // Audited before the tasks are handed out, so no result precedes its task.
    for (const std::string& member : cohort) {
      SV_RETURN_IF_ERROR(store_->Audit(
          "task", member, {{"study", id_}, {"round", 1}, {"kind", "statistics"}}));
    }
    secure = StartRound(cohort);
  }
  absl::StatusOr<Released> summary =
      secure.ok() ? Release(secure->get()) : absl::StatusOr<Released>(secure.status());
  bool stopped = false;
  {
    absl::MutexLock lock(&federation_->mutex);
    secure_.reset();
    consent_tasks_.clear();
    EndOpenTasks();
    stopped = stopping();
  }
  record.finished_unix_ms = absl::ToUnixMillis(absl::Now());
  if (!summary.ok()) {
    if (stopped) return absl::OkStatus();  // resumes (or ends) with the coordinator
    if (summary.status().code() == absl::StatusCode::kInternal) return summary.status();
    failure_ = std::string(summary.status().message());
    record.failure_reason = failure_;
    log->warn("study {}: the secure sum failed: {}", id_, failure_);
    SV_RETURN_IF_ERROR(store_->RecordFailedRound(record));
  } else {
    record.succeeded = true;
    record.model_digest = Sha256Hex(summary->json);
    record.participants = summary->contributors;
    if (summary->epsilon.has_value()) record.metrics["epsilon"] = *summary->epsilon;
    SV_RETURN_IF_ERROR(store_->CommitRound(record, summary->json));
    // Committed: the sealed sum is spent.
    if (absl::Status removed = sealed_store_->Remove(digest_); !removed.ok()) {
      log->warn("study {}: {}", id_, removed.message());
    }
    log->info("study {} released the statistics of {} sites ({} columns, {} values summed); "
              "`samverka study show {}` prints them",
              id_, record.participants.size(), spec_.numeric.size() + spec_.categorical.size(),
              length_, id_);
  }
  absl::MutexLock lock(&federation_->mutex);
  finished_ = true;
  return store_->Audit("study_done", options_.federation_id,
                       {{"study", id_}, {"released", summary.ok()}, {"digest", record.model_digest}});
}

SecureRound::Setup StatisticsRun::MakeSetup(const std::vector<std::string>& cohort) {
  SecureRound::Setup setup;
  setup.federation_id = options_.federation_id;
  setup.round = 1;
  setup.cohort = cohort;
  setup.integer_length = length_;
  setup.model_digest = digest_;
  setup.ca_pem = options_.ca_pem;
  setup.start = absl::Now();
  setup.input_deadline = setup.start + options_.round.train_deadline;
  setup.min_clients = std::max(options_.round.min_clients, 3);
  MakeSealingDurable(&setup, sealed_store_.get(), store_.get(), options_.federation_id, id_);
  return setup;
}

ClientTask StatisticsRun::MakeTask(TaskKind kind, int cohort_size) const {
  ClientTask task;
  task.task_id = absl::StrCat(id_, kind == TaskKind::kConsent ? "-consent" : "-statistics");
  task.round = 1;
  task.kind = kind;
  task.model_digest = digest_;
  task.study_id = id_;
  task.deadline_seconds = absl::ToDoubleSeconds(kind == TaskKind::kConsent
                                                    ? options_.secure_aggregation.stage_deadline
                                                    : options_.round.train_deadline);
  task.cohort_size = cohort_size;
  return task;
}

absl::StatusOr<std::shared_ptr<SecureRound>> StatisticsRun::StartRound(
    const std::vector<std::string>& cohort) {
  absl::StatusOr<std::unique_ptr<SecureRound>> made =
      SecureRound::Create(options_.secure_aggregation, MakeSetup(cohort));
  if (!made.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot set up secure aggregation: ", made.status().message()));
  }
  std::shared_ptr<SecureRound> secure = std::move(*made);
  const ClientTask task = MakeTask(TaskKind::kStatistics, static_cast<int>(cohort.size()));
  absl::MutexLock lock(&federation_->mutex);
  secure_ = secure;
  for (const std::string& member : cohort) {
    if (!federation_->clients[member].online) {
      secure->ReportDropout(member);
      continue;
    }
    federation_->assigned[member] = task;
    federation_->assigned[member].secure_aggregation = *secure->TaskFor(member);
  }
  Logger("coordinator")
      ->info("study {}: {} sites compute the statistics of data set '{}' ({} columns); their "
             "vectors are summed with secure aggregation",
             id_, cohort.size(), dataset_, spec_.numeric.size() + spec_.categorical.size());
  return secure;
}

absl::StatusOr<absl::StatusOr<std::shared_ptr<SecureRound>>> StatisticsRun::ResumeSealed() {
  SV_ASSIGN_OR_RETURN(std::optional<SealedSum> sealed, sealed_store_->Load(digest_));
  if (!sealed.has_value()) return std::shared_ptr<SecureRound>();
  SV_ASSIGN_OR_RETURN(auto consents, sealed_store_->LoadConsents(digest_));
  std::vector<std::string> awaiting;
  for (uint32_t id : sealed->contributors) {
    if (id < 1 || id > sealed->cohort.size()) {
      return absl::DataLossError("a sealed sum names a contributor outside its cohort");
    }
    if (!consents.contains(id)) awaiting.push_back(sealed->cohort[id - 1]);
  }
  Logger("coordinator")
      ->info("study {}: completing the secure sum stored before the coordinator stopped: {} of "
             "{} sites have released it",
             id_, sealed->contributors.size() - awaiting.size(), sealed->contributors.size());
  const std::vector<std::string> cohort = sealed->cohort;
  absl::StatusOr<std::unique_ptr<SecureRound>> resumed = SecureRound::Resume(
      options_.secure_aggregation, MakeSetup(cohort), *std::move(sealed), std::move(consents));
  if (!resumed.ok()) return absl::StatusOr<std::shared_ptr<SecureRound>>(resumed.status());
  std::shared_ptr<SecureRound> secure = std::move(*resumed);
  const ClientTask consent = MakeTask(TaskKind::kConsent, static_cast<int>(cohort.size()));
  absl::MutexLock lock(&federation_->mutex);
  secure_ = secure;
  // Sites online now get their consent task at once, the others when they
  // next poll (TakeConsentTask).
  for (const std::string& site : awaiting) {
    ClientTask task = consent;
    task.secure_aggregation = *secure->TaskFor(site);
    if (federation_->clients[site].online) {
      federation_->assigned[site] = std::move(task);
    } else {
      consent_tasks_[site] = std::move(task);
    }
  }
  return secure;
}

std::optional<ClientTask> StatisticsRun::TakeConsentTask(const std::string& site) {
  auto it = consent_tasks_.find(site);
  if (it == consent_tasks_.end()) return std::nullopt;
  ClientTask task = std::move(it->second);
  consent_tasks_.erase(it);
  return task;
}

absl::StatusOr<StatisticsRun::Released> StatisticsRun::Release(SecureRound* secure) {
  while (!secure->Advance(absl::Now())) {
    {
      absl::MutexLock lock(&federation_->mutex);
      federation_->MarkDeadClients(absl::Now());
      if (stopping()) {
        return absl::CancelledError("the coordinator is stopping or the study was aborted");
      }
    }
    secure->WaitForChange(absl::Seconds(1));
  }
  absl::StatusOr<SecureRoundResult> sum = secure->result();
  if (!sum.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("secure aggregation aborted: ", sum.status().message()));
  }
  std::optional<double> epsilon;
  if (spec_.dp()) {
    if (static_cast<int>(sum->contributors.size()) < dp_sites_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "only ", sum->contributors.size(), " sites contributed; the sites sized their noise for ",
          dp_sites_, " (min_clients), so the sum is not released"));
    }
    SV_ASSIGN_OR_RETURN(epsilon, statistics::Epsilon(spec_, dp_delta_));
  }
  SV_ASSIGN_OR_RETURN(nlohmann::json summary,
                      statistics::Summarise(spec_, sum->integer_sum,
                                            static_cast<int>(sum->contributors.size())));
  if (epsilon.has_value()) {
    summary["dp"]["epsilon"] = *epsilon;
    summary["dp"]["delta"] = dp_delta_;
  }
  summary["study"] = id_;
  summary["dataset"] = dataset_;
  summary["contributors"] = sum->contributors;
  SV_RETURN_IF_ERROR(store_->Audit("secure_aggregate", options_.federation_id,
                                   {{"study", id_},
                                    {"instance", sum->instance},
                                    {"contributors", sum->contributors.size()},
                                    {"dropped", sum->dropped.size()},
                                    {"neighbours", sum->parameters.num_neighbours},
                                    {"threshold", sum->parameters.threshold}}));
  return Released{summary.dump(1), sum->contributors, epsilon};
}

}  // namespace samverka::coordinator
