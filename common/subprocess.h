// common/subprocess.h
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace samverka {

// One run of a child program: no shell, no PATH search.
struct SubprocessOptions {
  // argv[0] is the executable's path, run as given (no PATH search).
  std::vector<std::string> argv;
  // Written to the child's stdin, which is then closed. Not copied: the
  // bytes (a whole model, for evaluation) must outlive the run.
  std::string_view stdin_data;
  // Set in the child's environment on top of (or replacing) this process's.
  std::vector<std::pair<std::string, std::string>> environment;
  // Set in the child's environment only where this process has no value.
  std::vector<std::pair<std::string, std::string>> environment_defaults;
  // The child's process group is killed if it has not finished by then.
  absl::Duration timeout = absl::InfiniteDuration();
};

// Runs a child program to its end and returns what it wrote to stdout.
// stdin and stdout are pumped concurrently (poll), so payloads of any size
// pass in both directions without deadlock. The child's stderr is copied to
// this process's stderr line by line as it arrives, so its log lines appear
// in ours. The child runs in its own process group, so a terminal's Ctrl-C
// reaches only this process. Blocks the calling thread until the child
// exits; thread-safe.
//
// Errors: kNotFound / kPermissionDenied if the program cannot be started
// (the message names the path); kInternal if it exits with a non-zero code
// (the message has the code and the last line it wrote to stderr) or is
// killed by a signal (the message names the signal); kDeadlineExceeded if
// it ran past `timeout` (it and its children are then killed).
absl::StatusOr<std::string> RunSubprocess(const SubprocessOptions& options);

}  // namespace samverka
