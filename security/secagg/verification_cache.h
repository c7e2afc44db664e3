// security/secagg/verification_cache.h
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace samverka::security::secagg {

// Remembers successful certificate-and-signature checks of key
// advertisements, so that the virtual clients of a simulation, which run in
// one process and all check the same roster, verify each advertisement once
// instead of once per client (n instead of n^2 chain and signature checks;
// an OpenSSL 3 chain check costs about a millisecond).
//
// The key is a SHA-256 over everything the check depends on (CA, certificate
// chain, name, signed bytes, signature), so a changed input is checked
// afresh; only successes are kept, for `ttl` of the checking clock. Share
// one cache only among parties of one process that trust each other's
// results, i.e. a simulation; a deployed client has its own process and
// needs none. Thread-safe.
class VerificationCache {
 public:
  using Key = std::array<uint8_t, 32>;

  explicit VerificationCache(absl::Duration ttl = absl::Minutes(10))
      : ttl_(ttl) {}

  // OK at once if `key` was checked successfully within ttl before `now`;
  // otherwise runs `verify` (without holding the lock) and remembers an OK
  // result. Returns verify's status.
  absl::Status Check(const Key& key, absl::Time now,
                     const std::function<absl::Status()>& verify);

  // Number of remembered successes (for tests).
  size_t size() const;

 private:
  const absl::Duration ttl_;
  mutable absl::Mutex mutex_;
  std::map<Key, absl::Time> verified_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace samverka::security::secagg
