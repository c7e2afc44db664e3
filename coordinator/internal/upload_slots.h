// coordinator/internal/upload_slots.h
#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace samverka::coordinator::internal {

// A counting semaphore bounding how many uploads the coordinator assembles
// and decodes at once, so its memory is O(capacity x model) rather than
// O(clients x model). A caller waiting for a slot stops reading its stream,
// and gRPC flow control then holds the client back. Thread-safe.
class UploadSlots {
 public:
  // `capacity` must be >= 1 (CoordinatorOptions::Validate checks it).
  explicit UploadSlots(int capacity) : free_(capacity) {}

  // Takes a slot if one frees up within `timeout`; false otherwise.
  bool TryAcquireFor(absl::Duration timeout) {
    absl::MutexLock lock(&mutex_);
    if (!mutex_.AwaitWithTimeout(absl::Condition(this, &UploadSlots::Available), timeout)) {
      return false;
    }
    --free_;
    return true;
  }
  // Returns a slot taken by TryAcquireFor.
  void Release() {
    absl::MutexLock lock(&mutex_);
    ++free_;
  }

 private:
  bool Available() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return free_ > 0; }

  absl::Mutex mutex_;
  int free_ ABSL_GUARDED_BY(mutex_);
};

// Holds one slot of an UploadSlots for its lifetime (every return path
// releases it).
class UploadSlot {
 public:
  UploadSlot() = default;
  UploadSlot(const UploadSlot&) = delete;
  UploadSlot& operator=(const UploadSlot&) = delete;
  ~UploadSlot() {
    if (slots_ != nullptr) slots_->Release();
  }

  // Waits up to `timeout` for a slot of `slots`; false if none freed up.
  bool TryAcquireFor(UploadSlots* slots, absl::Duration timeout) {
    if (slots_ != nullptr) return true;
    if (!slots->TryAcquireFor(timeout)) return false;
    slots_ = slots;
    return true;
  }

 private:
  UploadSlots* slots_ = nullptr;
};

}  // namespace samverka::coordinator::internal
