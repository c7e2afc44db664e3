// coordinator/studies/active_study.h
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "common/task.h"
#include "coordinator/federation/federation_state.h"
#include "coordinator/secure_round.h"
#include "coordinator/state_store.h"

namespace samverka::coordinator {

// A plain update that the service decoded while it streamed in
// (UpdateReceiver): its values, and the size and SHA-256 of its encoding.
struct ReceivedUpdate {
  std::vector<float> values;
  uint64_t bytes = 0;
  std::string digest;
};

// The running study as the Coordinator sees it: what it routes the sites'
// calls to. A training study (StudyRun) and a statistics study
// (StatisticsRun) are the two kinds. The methods marked "under the
// federation's mutex" are called with FederationState::mutex held.
class ActiveStudy : public StudyEvents {
 public:
  ~ActiveStudy() override = default;

  virtual const std::string& id() const = 0;
  // The rounds the study runs (1 for statistics).
  virtual int rounds() const = 0;
  // The study's view of the state database.
  virtual StateStore& store() = 0;

  // Runs the study until it is done, the federation stops or it is
  // aborted. An error only for failures of the coordinator itself.
  virtual absl::Status Run() = 0;
  // After Run: true if the study ran to its end (not stopped or aborted).
  virtual bool finished() const = 0;
  // After Run: why no site can serve the study; empty otherwise.
  virtual std::string unserved() const = 0;
  // After a finished Run: kFailedPrecondition if it produced nothing.
  virtual absl::Status Outcome() = 0;

  // --- under the federation's mutex ---
  virtual void Abort() = 0;
  // A site registered (again): it is selected if it serves the study.
  virtual void AddSite(const std::string& site) = 0;
  // `site` refused the study (its policy): it is not selected again.
  virtual void SiteRefused(const std::string& site) = 0;
  // A training task the site itself failed.
  virtual void NoteTrainingFailure(const std::string& site, int64_t round) = 0;
  // A consent task waiting for `site` (after a restart), handed out once.
  virtual std::optional<ClientTask> TakeConsentTask(const std::string& site) = 0;
  // The encoded model with this digest, if the study holds one.
  virtual std::shared_ptr<const std::string> FindModel(const std::string& digest) const = 0;
  // The checks of Coordinator::ExpectResult for a task of this study.
  virtual absl::Status CheckResult(const std::string& site, const ClientTask& task,
                                   const TaskOutcome& outcome) const = 0;
  virtual std::shared_ptr<SecureRound> secure_round() const = 0;
  virtual int64_t next_round() const = 0;
  // A statistics study: the bytes of one site's vector (bounds its masked
  // input); 0 for training.
  virtual uint64_t statistics_vector_bytes() const { return 0; }

  // --- without the lock ---
  // A result that CheckResult accepted.
  virtual absl::Status SubmitResult(const std::string& site, const TaskOutcome& outcome,
                                    ReceivedUpdate received) = 0;
};

}  // namespace samverka::coordinator
