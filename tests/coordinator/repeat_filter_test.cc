#include "coordinator/federation/repeat_filter.h"

#include <gtest/gtest.h>

namespace samverka::coordinator {
namespace {

TEST(RepeatFilterTest, AFloodIsOneEventAMinuteWithItsCount) {
  RepeatFilter filter(absl::Minutes(1));
  const absl::Time t0 = absl::FromUnixSeconds(1'000'000);
  int64_t held = -1;
  EXPECT_TRUE(filter.Admit("10.0.0.7/revoked", t0, &held));
  EXPECT_EQ(held, 0);
  int admitted = 0;
  for (int i = 1; i <= 499; ++i) {
    admitted += filter.Admit("10.0.0.7/revoked", t0 + absl::Milliseconds(8 * i), &held);
  }
  EXPECT_EQ(admitted, 0);
  // Another reason or another host is another event.
  EXPECT_TRUE(filter.Admit("10.0.0.8/revoked", t0, &held));
  EXPECT_TRUE(filter.Admit("10.0.0.7/not on the allow-list", t0, &held));
  // A minute later the next one is written, carrying the 499 held back.
  EXPECT_TRUE(filter.Admit("10.0.0.7/revoked", t0 + absl::Minutes(1), &held));
  EXPECT_EQ(held, 499);
}

TEST(RepeatFilterTest, CountsHeldBackAreReportedEvenIfTheFloodStops) {
  RepeatFilter filter(absl::Minutes(1));
  const absl::Time t0 = absl::FromUnixSeconds(1'000'000);
  int64_t held = 0;
  filter.Admit("a", t0, &held);
  filter.Admit("a", t0 + absl::Seconds(1), &held);
  filter.Admit("a", t0 + absl::Seconds(2), &held);
  filter.Admit("b", t0, &held);  // nothing held back for b
  EXPECT_TRUE(filter.TakeHeldBack(t0 + absl::Seconds(59)).empty());
  auto taken = filter.TakeHeldBack(t0 + absl::Minutes(1));
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].first, "a");
  EXPECT_EQ(taken[0].second, 2);
  EXPECT_TRUE(filter.TakeHeldBack(t0 + absl::Minutes(2)).empty()) << "reported once";
}

TEST(RepeatFilterTest, MemoryIsBoundedAndNothingIsLostWhenFull) {
  RepeatFilter filter(absl::Minutes(1), /*max_keys=*/2);
  const absl::Time t0 = absl::FromUnixSeconds(1'000'000);
  int64_t held = 0;
  EXPECT_TRUE(filter.Admit("a", t0, &held));
  EXPECT_TRUE(filter.Admit("b", t0, &held));
  // Full, and no key's window has passed: c is written every time.
  EXPECT_TRUE(filter.Admit("c", t0, &held));
  EXPECT_TRUE(filter.Admit("c", t0, &held));
  // After the window, a and b are forgotten to make room.
  EXPECT_TRUE(filter.Admit("c", t0 + absl::Minutes(2), &held));
  EXPECT_FALSE(filter.Admit("c", t0 + absl::Minutes(2), &held));
}

TEST(RepeatFilterTest, PeerHostDropsThePort) {
  EXPECT_EQ(PeerHost("ipv4:10.0.0.7:51234"), "ipv4:10.0.0.7");
  EXPECT_EQ(PeerHost("ipv6:[::1]:443"), "ipv6:[::1]");
  EXPECT_EQ(PeerHost("tls-handshake"), "tls-handshake");
  EXPECT_EQ(PeerHost("unix:/run/samverka.sock"), "unix:/run/samverka.sock");
}

}  // namespace
}  // namespace samverka::coordinator
