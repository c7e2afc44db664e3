// client/internal/daemon_util.h: small helpers the daemon's files share.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace samverka::client::internal {

// A digest as the logs show it: its first 16 hex digits.
inline std::string Short(const std::string& digest) { return digest.substr(0, 16); }

// A failed call worth retrying later (the connection, the coordinator's
// load), not a refusal.
inline bool Retryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kResourceExhausted || code == absl::StatusCode::kAborted ||
         code == absl::StatusCode::kCancelled || code == absl::StatusCode::kInternal ||
         code == absl::StatusCode::kUnknown;
}

}  // namespace samverka::client::internal
