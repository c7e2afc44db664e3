// coordinator/federation/repeat_filter.cc
#include "coordinator/federation/repeat_filter.h"

namespace samverka::coordinator {

bool RepeatFilter::Admit(const std::string& key, absl::Time now, int64_t* suppressed) {
  absl::MutexLock lock(&mutex_);
  *suppressed = 0;
  auto it = seen_.find(key);
  if (it != seen_.end()) {
    if (now - it->second.written < window_) {
      ++it->second.suppressed;
      return false;
    }
    *suppressed = it->second.suppressed;
    it->second = Seen{now, 0};
    return true;
  }
  if (seen_.size() >= max_keys_) Forget(now);
  if (seen_.size() < max_keys_) seen_.emplace(key, Seen{now, 0});
  return true;
}

std::vector<std::pair<std::string, int64_t>> RepeatFilter::TakeHeldBack(absl::Time now) {
  absl::MutexLock lock(&mutex_);
  std::vector<std::pair<std::string, int64_t>> held;
  for (auto& [key, seen] : seen_) {
    if (seen.suppressed > 0 && now - seen.written >= window_) {
      held.emplace_back(key, seen.suppressed);
      seen.suppressed = 0;
    }
  }
  return held;
}

void RepeatFilter::Forget(absl::Time now) {
  for (auto it = seen_.begin(); it != seen_.end();) {
    // A key past its window with nothing held back has nothing to report.
    if (now - it->second.written >= window_ && it->second.suppressed == 0) {
      it = seen_.erase(it);
    } else {
      ++it;
    }
  }
}

std::string PeerHost(const std::string& grpc_peer) {
  const size_t colon = grpc_peer.rfind(':');
  const size_t scheme = grpc_peer.find(':');
  if (colon == std::string::npos || colon == scheme) return grpc_peer;
  return grpc_peer.substr(0, colon);
}

}  // namespace samverka::coordinator
