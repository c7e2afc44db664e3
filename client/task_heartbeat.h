// client/task_heartbeat.h
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace samverka::client {

// Keeps a site alive at the coordinator for as long as it works on a task:
// from the moment the task arrives (building a large model, downloading it,
// setting up secure aggregation, training, encoding) until its result is
// sent, a thread calls `beat` every `interval`. Each of those steps can take
// longer than the coordinator's silence timeout on its own. `beat` returns
// whether the coordinator still wants the task, or nullopt if the call
// failed (the last answer then stands). Thread-safe; the destructor stops
// and joins the thread.
class TaskHeartbeat {
 public:
  TaskHeartbeat(absl::Duration interval, std::function<std::optional<bool>()> beat)
      : thread_([this, interval, beat = std::move(beat)] {
          while (!stop_.WaitForNotificationWithTimeout(interval)) {
            if (std::optional<bool> active = beat(); active.has_value()) wanted_ = *active;
          }
        }) {}
  TaskHeartbeat(const TaskHeartbeat&) = delete;
  TaskHeartbeat& operator=(const TaskHeartbeat&) = delete;
  ~TaskHeartbeat() {
    stop_.Notify();
    thread_.join();
  }

  // False once the coordinator said the task is no longer wanted (its round
  // closed or the task was cancelled).
  bool wanted() const { return wanted_; }

 private:
  absl::Notification stop_;
  std::atomic<bool> wanted_{true};
  std::thread thread_;  // last: it starts once the members above exist
};

}  // namespace samverka::client
