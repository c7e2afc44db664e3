#include "coordinator/internal/upload_slots.h"

#include <gtest/gtest.h>

#include <thread>

#include "absl/synchronization/notification.h"

namespace samverka::coordinator::internal {
namespace {

TEST(UploadSlotsTest, AdmitsAtMostCapacityAndReleasesOnScopeExit) {
  UploadSlots slots(2);
  {
    UploadSlot a, b, c;
    ASSERT_TRUE(a.TryAcquireFor(&slots, absl::ZeroDuration()));
    ASSERT_TRUE(b.TryAcquireFor(&slots, absl::ZeroDuration()));
    EXPECT_FALSE(c.TryAcquireFor(&slots, absl::Milliseconds(10)));
  }
  UploadSlot d, e;
  EXPECT_TRUE(d.TryAcquireFor(&slots, absl::ZeroDuration()));
  EXPECT_TRUE(e.TryAcquireFor(&slots, absl::ZeroDuration()));
}

TEST(UploadSlotsTest, AWaiterGetsTheSlotWhenItIsReleased) {
  UploadSlots slots(1);
  auto held = std::make_unique<UploadSlot>();
  ASSERT_TRUE(held->TryAcquireFor(&slots, absl::ZeroDuration()));
  absl::Notification waiting, admitted;
  std::thread waiter([&] {
    UploadSlot slot;
    waiting.Notify();
    if (slot.TryAcquireFor(&slots, absl::Seconds(30))) admitted.Notify();
  });
  waiting.WaitForNotification();
  EXPECT_FALSE(admitted.HasBeenNotified());
  held.reset();
  EXPECT_TRUE(admitted.WaitForNotificationWithTimeout(absl::Seconds(30)));
  waiter.join();
}

}  // namespace
}  // namespace samverka::coordinator::internal
