// security/secagg/verification_cache.cc
#include "security/secagg/verification_cache.h"

namespace samverka::security::secagg {

absl::Status VerificationCache::Check(
    const Key& key, absl::Time now,
    const std::function<absl::Status()>& verify) {
  {
    absl::MutexLock lock(&mutex_);
    const auto it = verified_.find(key);
    if (it != verified_.end() && now >= it->second &&
        now - it->second <= ttl_) {
      return absl::OkStatus();
    }
  }
  absl::Status status = verify();
  if (status.ok()) {
    absl::MutexLock lock(&mutex_);
    verified_[key] = now;
  }
  return status;
}

size_t VerificationCache::size() const {
  absl::MutexLock lock(&mutex_);
  return verified_.size();
}

}  // namespace samverka::security::secagg
