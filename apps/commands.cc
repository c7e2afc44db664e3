// What both executables share: exit codes, errors, and running a daemon
// until a signal.
#include <csignal>
#include <cstdio>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "apps/commands.h"
#include "common/logging.h"

namespace samverka::apps {
namespace {

int exit_code = 0;

// SIGTERM / SIGINT end a daemon cleanly: the handler only flags; a watcher
// thread calls the stop function.
volatile std::sig_atomic_t signalled = 0;
extern "C" void OnSignal(int) { signalled = 1; }

}  // namespace

int ExitCode() { return exit_code; }
void SetExitCode(int code) { exit_code = code; }
void Fail(std::string_view message) {
  std::fprintf(stderr, "samverka: error: %.*s\n", static_cast<int>(message.size()),
               message.data());
  exit_code = 1;
}

absl::Status RunUntilSignal(const std::function<absl::Status()>& run,
                            const std::function<void()>& stop) {
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  absl::Notification finished;
  std::thread watcher([&] {
    while (!finished.WaitForNotificationWithTimeout(absl::Milliseconds(200))) {
      if (signalled) {
        Logger("main")->info("signal received; stopping");
        stop();
        return;
      }
    }
  });
  absl::Status status = run();
  finished.Notify();
  watcher.join();
  return status;
}

}  // namespace samverka::apps
