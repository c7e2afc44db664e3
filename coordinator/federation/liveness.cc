#include "coordinator/federation/liveness.h"

#include <algorithm>

namespace samverka::coordinator {

void SiteLiveness::Touch(const std::string& site, absl::Time now) {
  absl::MutexLock lock(&mutex_);
  absl::Time& seen = last_seen_[site];
  seen = std::max(seen, now);
}

void SiteLiveness::Refresh(const std::string& site, absl::Time now) {
  absl::MutexLock lock(&mutex_);
  if (auto it = last_seen_.find(site); it != last_seen_.end()) it->second = std::max(it->second, now);
}

void SiteLiveness::Forget(const std::string& site) {
  absl::MutexLock lock(&mutex_);
  last_seen_.erase(site);
}

std::vector<std::pair<std::string, absl::Duration>> SiteLiveness::TakeSilent(absl::Time now) {
  absl::MutexLock lock(&mutex_);
  std::vector<std::pair<std::string, absl::Duration>> silent;
  for (auto it = last_seen_.begin(); it != last_seen_.end();) {
    if (now - it->second > timeout_) {
      silent.emplace_back(it->first, now - it->second);
      it = last_seen_.erase(it);
    } else {
      ++it;
    }
  }
  return silent;
}

std::optional<absl::Time> SiteLiveness::LastSeen(const std::string& site) const {
  absl::MutexLock lock(&mutex_);
  auto it = last_seen_.find(site);
  if (it == last_seen_.end()) return std::nullopt;
  return it->second;
}

}  // namespace samverka::coordinator
