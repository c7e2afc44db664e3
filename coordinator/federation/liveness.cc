#include "coordinator/federation/liveness.h"

#include <algorithm>
#include <utility>

namespace samverka::coordinator {

SiteLiveness::Waiting::Waiting(SiteLiveness* liveness, std::string site)
    : liveness_(liveness), site_(std::move(site)) {
  absl::MutexLock lock(&liveness_->mutex_);
  ++liveness_->waiting_[site_];
}

SiteLiveness::Waiting::~Waiting() {
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&liveness_->mutex_);
  if (--liveness_->waiting_[site_] == 0) liveness_->waiting_.erase(site_);
  if (auto it = liveness_->last_seen_.find(site_); it != liveness_->last_seen_.end()) {
    it->second = std::max(it->second, now);
  }
}

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
    if (now - it->second > timeout_ && !waiting_.contains(it->first)) {
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
