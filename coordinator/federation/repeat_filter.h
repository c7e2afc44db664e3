// coordinator/federation/repeat_filter.h
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace samverka::coordinator {

// Coalesces events that repeat: 500 handshakes with a revoked certificate in
// 4 s once wrote 532 audit rows and as many log lines. The first event of a
// key in a window is written; the rest of that window are only counted, and
// the next one written after the window carries the count ("repeated N
// times"). Keys are what makes two events the same (a peer's address and
// the reason, a site's name). At most `max_keys` are remembered; beyond
// that, keys whose window has passed are forgotten first, and if none has,
// events are written (never silently lost). Thread-safe.
class RepeatFilter {
 public:
  explicit RepeatFilter(absl::Duration window, size_t max_keys = 10'000)
      : window_(window), max_keys_(max_keys) {}

  // True if the event should be written; then *suppressed is how many
  // events of `key` were held back since the last one written.
  bool Admit(const std::string& key, absl::Time now, int64_t* suppressed);
  // The keys whose window has passed with events held back, and how many,
  // so the count is written even if the events stopped; each is reported
  // once.
  std::vector<std::pair<std::string, int64_t>> TakeHeldBack(absl::Time now);

 private:
  struct Seen {
    absl::Time written;
    int64_t suppressed = 0;
  };
  void Forget(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const absl::Duration window_;
  const size_t max_keys_;
  absl::Mutex mutex_;
  std::map<std::string, Seen> seen_ ABSL_GUARDED_BY(mutex_);
};

// The address of a gRPC peer without its port ("ipv4:10.0.0.7:51234" ->
// "ipv4:10.0.0.7"), so every connection of one host is one peer.
std::string PeerHost(const std::string& grpc_peer);

}  // namespace samverka::coordinator
