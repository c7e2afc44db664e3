// coordinator/federation/federation_state.h
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/task.h"
#include "coordinator/federation/liveness.h"
#include "coordinator/federation/repeat_filter.h"
#include "coordinator/state_store.h"

namespace samverka::coordinator {

// A data set a site names (client.toml [datasets]) and how many samples it
// holds: counts only, never data.
struct SiteDataset {
  int64_t train_samples = 0;
  int64_t eval_samples = 0;
  // A table's column names (its header), for statistics studies.
  std::vector<std::string> columns;
};

// A site as the coordinator knows it.
struct ClientInfo {
  std::string name;
  // A single-run federation's counts (the site's one data set).
  int64_t train_samples = 0;
  int64_t eval_samples = 0;
  // A standing federation's: the site's data sets by name.
  std::map<std::string, SiteDataset> datasets;
  absl::Time last_seen;
  bool online = false;
};

// A task a site refused or could not run.
struct TaskRefusal {
  std::string site;
  int64_t round = 0;
  std::string reason;
  std::string study;  // empty in a single-run federation
};

// What the federation must tell the study that owns a site's task when the
// site goes away (the study is in coordinator/studies; the federation only
// knows this interface). Called with FederationState::mutex held.
class StudyEvents {
 public:
  virtual ~StudyEvents() = default;
  // `site` went offline: it is no longer selected.
  virtual void OnSiteOffline(const std::string& site) = 0;
  // `site`'s open `task` of this study ended without a result (offline,
  // refused, failed); `reason` says why.
  virtual void OnTaskLost(const std::string& site, const ClientTask& task,
                          const std::string& reason) = 0;
};

// The federation's part of the coordinator (DESIGN.md): which sites are
// registered and alive, the one open task each may have, refusals, and the
// audit of refused calls. Studies run on it (coordinator/studies/); the
// Coordinator routes the sites' calls between them. One mutex guards it
// and the running study's state, so a study waits on conditions over both.
struct FederationState {
  FederationState(absl::Duration liveness_timeout, std::unique_ptr<StateStore> store)
      : store(std::move(store)), liveness(liveness_timeout) {}

  // The federation's view of the state database (audit log, studies).
  const std::unique_ptr<StateStore> store;
  // Signs of life (its own lock, never `mutex`).
  SiteLiveness liveness;
  // Repeated refusals and re-registrations, coalesced in the audit log.
  RepeatFilter refusals_seen{absl::Minutes(1)};
  RepeatFilter joins_seen{absl::Minutes(1)};

  absl::Mutex mutex;
  std::map<std::string, ClientInfo> clients ABSL_GUARDED_BY(mutex);
  // Work handed out and not yet finished, by site: at most one task each.
  std::map<std::string, ClientTask> assigned ABSL_GUARDED_BY(mutex);
  std::deque<TaskRefusal> refusals ABSL_GUARDED_BY(mutex);  // newest last
  bool stop ABSL_GUARDED_BY(mutex) = false;
  // The study that is training, if any.
  StudyEvents* active ABSL_GUARDED_BY(mutex) = nullptr;

  // Takes sites silent past the liveness timeout for offline, telling the
  // running study.
  void MarkDeadClients(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex);
  // Waits until `done()` or `deadline` (false) or stop (false), waking at
  // least once a second to notice silent sites.
  bool WaitFor(std::function<bool()> done, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex);
  // Ends `site`'s open task, if it is `task_id` (any, if empty), telling
  // its study why.
  void EndTask(const std::string& site, const std::string& task_id, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex);
  void AddRefusal(TaskRefusal refusal) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex);
  // Writes the counts of refusals and joins held back whose minute passed.
  void AuditHeldBack(absl::Time now);
  // Audits a refused connection or call, once a minute per peer host and
  // reason: true if this one was written (and should be logged).
  bool AuditRefusal(const std::string& peer, const std::string& reason);
};

}  // namespace samverka::coordinator
