#include "coordinator/federation/liveness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace samverka::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

const absl::Time kStart = absl::FromUnixSeconds(1'000'000);

TEST(SiteLivenessTest, ASiteSilentPastTheTimeoutIsTakenOnce) {
  SiteLiveness liveness(absl::Seconds(10));
  liveness.Touch("a", kStart);
  liveness.Touch("b", kStart + absl::Seconds(5));
  EXPECT_THAT(liveness.TakeSilent(kStart + absl::Seconds(10)), IsEmpty());
  EXPECT_THAT(liveness.TakeSilent(kStart + absl::Seconds(11)),
              ElementsAre(Pair("a", absl::Seconds(11))));
  EXPECT_FALSE(liveness.LastSeen("a").has_value());
  EXPECT_THAT(liveness.TakeSilent(kStart + absl::Seconds(12)), IsEmpty());
  EXPECT_EQ(liveness.LastSeen("b"), kStart + absl::Seconds(5));
}

TEST(SiteLivenessTest, RefreshKeepsATrackedSiteAliveButNeverRevivesAnOfflineOne) {
  SiteLiveness liveness(absl::Seconds(10));
  liveness.Touch("a", kStart);
  for (int s = 5; s <= 30; s += 5) liveness.Refresh("a", kStart + absl::Seconds(s));
  EXPECT_THAT(liveness.TakeSilent(kStart + absl::Seconds(39)), IsEmpty());
  EXPECT_THAT(liveness.TakeSilent(kStart + absl::Seconds(41)), ElementsAre(Pair("a", absl::Seconds(11))));
  liveness.Refresh("a", kStart + absl::Seconds(42));  // a chunk after it was taken offline
  EXPECT_FALSE(liveness.LastSeen("a").has_value());
  liveness.Touch("a", kStart + absl::Seconds(43));  // it registered again
  EXPECT_EQ(liveness.LastSeen("a"), kStart + absl::Seconds(43));
}

TEST(SiteLivenessTest, AnOlderTimeNeverMovesLastSeenBack) {
  SiteLiveness liveness(absl::Seconds(10));
  liveness.Touch("a", kStart + absl::Seconds(5));
  liveness.Refresh("a", kStart);
  liveness.Touch("a", kStart + absl::Seconds(1));
  EXPECT_EQ(liveness.LastSeen("a"), kStart + absl::Seconds(5));
}

TEST(SiteLivenessTest, ASiteTheCoordinatorKeepsWaitingIsNeverSilent) {
  SiteLiveness liveness(absl::Seconds(10));
  liveness.Touch("a", kStart);
  liveness.Touch("b", kStart);
  absl::Time let_go;
  {
    SiteLiveness::Waiting poll(&liveness, "a");
    {
      // A second call of the same site, queued behind the coordinator's lock.
      SiteLiveness::Waiting heartbeat(&liveness, "a");
    }
    EXPECT_THAT(liveness.TakeSilent(kStart + absl::Seconds(60)),
                ElementsAre(Pair("b", absl::Seconds(60))));
    EXPECT_TRUE(liveness.LastSeen("a").has_value()) << "a call still waits, so `a` is not silent";
    let_go = absl::Now();
  }
  // Its silence counts from the moment the coordinator let the call go.
  ASSERT_TRUE(liveness.LastSeen("a").has_value());
  EXPECT_GE(*liveness.LastSeen("a"), let_go);
  EXPECT_THAT(liveness.TakeSilent(*liveness.LastSeen("a") + absl::Seconds(11)),
              ElementsAre(Pair("a", absl::Seconds(11))));
  {
    SiteLiveness::Waiting late(&liveness, "a");  // a call after it was taken offline
  }
  EXPECT_FALSE(liveness.LastSeen("a").has_value());
}

}  // namespace
}  // namespace samverka::coordinator
