// client/daemon_statistics.cc: the daemon's statistics tasks (issue 13).
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "client/daemon.h"
#include "client/statistics_task.h"
#include "common/logging.h"
#include "common/peer_text.h"
#include "common/status_macros.h"
#include "statistics/privacy.h"

namespace samverka::client {

absl::Status ClientDaemon::ExecuteStatistics(const ClientTask& task, const VerifiedStudy& study,
                                             const std::string& dataset,
                                             const security::secagg::ContributionScope& scope) {
  auto log = Logger("client");
  // Before any data is read: one released sum per manifest and data set.
  if (absl::Status open = ledger_->CheckCanContribute(scope); !open.ok()) {
    return RefuseStudy(task, absl::FailedPreconditionError(absl::StrCat("site policy: ", open.message())),
                       /*whole_study=*/true);
  }
  absl::StatusOr<std::string> path = CsvFileOf(datasets_.at(dataset).options);
  if (!path.ok()) {
    return RefuseStudy(
        task,
        absl::FailedPreconditionError(absl::StrCat(
            "data set '", dataset, "' is not a CSV table; statistics studies read CSV tables")),
        /*whole_study=*/true);
  }
  std::string coordinator_reason;
  absl::StatusOr<SiteStatistics> computed =
      ComputeSiteStatistics(*study.statistics, *path, policy_->policy(), &coordinator_reason);
  if (!computed.ok()) {
    log->error("refused study {}: {}", study.study_id, computed.status().message());
    refused_studies_.emplace(study.study_id, absl::FailedPreconditionError(coordinator_reason));
    studies_.erase(study.study_id);
    return Upload(TaskOutcome{task.task_id, task.round, task.kind, task.model_digest},
                  StudyRefusal(task.study_id, absl::FailedPreconditionError(coordinator_reason)),
                  /*refuses_study=*/true);
  }
  const size_t length = computed->vector.size();
  const statistics::StatisticsSpec& spec = *study.statistics;
  if (spec.dp()) {
    // This site's share of the noise, as one of at least dp_sites()
    // contributors, added before the vector is masked; the step is charged
    // to the data set's privacy ledger before anything leaves.
    if (absl::Status noised =
            statistics::AddSiteNoise(spec, study.manifest.dp_sites(), &computed->vector);
        !noised.ok()) {
      log->error("refused study {}: {}", study.study_id, noised.message());
      return Upload(TaskOutcome{task.task_id, task.round, task.kind, task.model_digest},
                    StudyRefusal(task.study_id, noised), /*refuses_study=*/true);
    }
    if (absl::Status recorded = policy_->RecordTraining(task, dataset, absl::Now()); !recorded.ok()) {
      log->error("study {}: {}; not sending the statistics", study.study_id, recorded.message());
      return Upload(TaskOutcome{task.task_id, task.round, task.kind, task.model_digest},
                    "the site could not record the release in its policy ledger");
    }
    if (absl::StatusOr<double> spent = policy_->EpsilonSpent(dataset); spent.ok()) {
      log->info("study {}: differential privacy: this site added its share of discrete Gaussian "
                "noise (multiplier {}, as one of at least {} sites); its privacy loss on data set "
                "'{}' so far is epsilon {:.3f} (delta {})",
                study.study_id, spec.dp_noise_multiplier, study.manifest.dp_sites(), dataset,
                *spent, options_.policy.max_epsilon_delta);
    }
  }
  CallbackTransport transport = TransportFor(task);
  absl::StatusOr<std::unique_ptr<SecureAggregationSession>> session =
      SecureAggregationSession::Start(site_, *task.secure_aggregation, task.round,
                                      task.model_digest, &transport);
  if (!session.ok()) {
    log->error("study {}: left secure aggregation: {}", study.study_id, session.status().message());
    if (stop_.HasBeenNotified()) return session.status();
    return Upload(TaskOutcome{task.task_id, task.round, task.kind, task.model_digest},
                  absl::StrCat("secure aggregation: ", session.status().message()));
  }
  absl::StatusOr<SecureContribution> sent =
      (*session)->ContributeIntegers(std::move(computed->vector));
  if (!sent.ok()) {
    log->error("study {}: secure aggregation stopped: {}", study.study_id, sent.status().message());
    return sent.status();
  }
  log->info("study {}: the statistics of {} rows of data set '{}' ({} columns) left this site "
            "only masked: one vector of {} integers ({} bytes masked; {} neighbours, threshold "
            "{}); the coordinator can unmask only the sum over the sites",
            study.study_id, computed->rows, dataset,
            study.statistics->numeric.size() + study.statistics->categorical.size(), length,
            sent->masked_bytes, sent->neighbours, sent->threshold);
  return absl::OkStatus();
}

}  // namespace samverka::client
