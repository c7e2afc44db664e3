// coordinator/federation/liveness.h
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace samverka::coordinator {

// When each site was last heard from: any call, and every chunk of a model
// download or an update upload as it moves. A site silent for longer than
// the timeout is taken for offline. It has its own lock, held only for a
// map update, so a site's sign of life is recorded at once even while the
// coordinator is busy elsewhere (closing a round of a large model takes
// seconds); the coordinator's own stall never looks like a site's silence.
// A site the coordinator itself keeps waiting (a call queued behind the
// coordinator's lock, a long poll) is never silent: see `Waiting`.
// Thread-safe.
class SiteLiveness {
 public:
  explicit SiteLiveness(absl::Duration timeout) : timeout_(timeout) {}

  // Held for as long as the coordinator keeps one of `site`'s calls waiting
  // (for its lock while it opens a round of a large model, in a long poll):
  // meanwhile the site cannot be taken for silent, and its silence counts
  // from the moment the coordinator lets the call go.
  class Waiting {
   public:
    Waiting(SiteLiveness* liveness, std::string site);
    ~Waiting();
    Waiting(const Waiting&) = delete;
    Waiting& operator=(const Waiting&) = delete;

   private:
    SiteLiveness* const liveness_;
    const std::string site_;
  };

  // `site` was heard from at `now` (it is alive from now on).
  void Touch(const std::string& site, absl::Time now);
  // The same for a site that is tracked; a site already taken for offline
  // stays offline (it must register again).
  void Refresh(const std::string& site, absl::Time now);
  // `site` is no longer tracked (it was taken for offline).
  void Forget(const std::string& site);
  // The tracked sites silent for longer than the timeout at `now`, with how
  // long each was silent; they are no longer tracked.
  std::vector<std::pair<std::string, absl::Duration>> TakeSilent(absl::Time now);
  // When `site` was last heard from; nullopt if it is not tracked.
  std::optional<absl::Time> LastSeen(const std::string& site) const;
  absl::Duration timeout() const { return timeout_; }

 private:
  const absl::Duration timeout_;
  mutable absl::Mutex mutex_;
  std::map<std::string, absl::Time> last_seen_ ABSL_GUARDED_BY(mutex_);
  // How many of each site's calls the coordinator keeps waiting now.
  std::map<std::string, int> waiting_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace samverka::coordinator
