#include "coordinator/federation/transfer_watch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace samverka::coordinator {
namespace {

using ::testing::HasSubstr;
using Kind = TransferWatch::Kind;

TEST(TransferWatchTest, ASiteHasOneUploadAndOneDownloadAtATime) {
  TransferWatch watch(absl::Seconds(10), absl::ZeroDuration());
  auto upload = watch.Begin("site-a", Kind::kUpload, [] {});
  ASSERT_TRUE(upload.ok());
  auto second = watch.Begin("site-a", Kind::kUpload, [] {});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(second.status().message(), HasSubstr("site site-a already has a model upload open"));
  EXPECT_TRUE(watch.Begin("site-a", Kind::kDownload, [] {}).ok());
  EXPECT_TRUE(watch.Begin("site-b", Kind::kUpload, [] {}).ok());
  upload->reset();  // the first upload ended
  EXPECT_TRUE(watch.Begin("site-a", Kind::kUpload, [] {}).ok());
}

TEST(TransferWatchTest, OnlyATransferThatStopsMovingIsCut) {
  TransferWatch watch(absl::Seconds(10), absl::ZeroDuration());
  int cancelled_moving = 0, cancelled_stalled = 0, cancelled_queued = 0;
  auto moving = watch.Begin("site-a", Kind::kUpload, [&] { ++cancelled_moving; });
  auto stalled = watch.Begin("site-b", Kind::kUpload, [&] { ++cancelled_stalled; });
  auto queued = watch.Begin("site-c", Kind::kUpload, [&] { ++cancelled_queued; });
  ASSERT_TRUE(moving.ok() && stalled.ok() && queued.ok());
  const absl::Time start = absl::FromUnixSeconds(1'000'000);
  (*moving)->Progress(start);
  (*stalled)->Progress(start);
  // Within the limit nothing is cut.
  EXPECT_EQ(watch.CutStalled(start + absl::Seconds(9)), 0);
  // A chunk of `moving` arrives at 5 s; at 10 s only the other armed one has
  // been still for the whole limit. The queued one never got a slot (never
  // armed), so it is not stalled however long it waits.
  (*moving)->Progress(start + absl::Seconds(5));
  EXPECT_EQ(watch.CutStalled(start + absl::Seconds(10)), 1);
  EXPECT_EQ(cancelled_stalled, 1);
  EXPECT_TRUE((*stalled)->cut());
  EXPECT_EQ(cancelled_moving, 0);
  EXPECT_FALSE((*moving)->cut());
  EXPECT_EQ(cancelled_queued, 0);
  // A cut transfer is cut once.
  EXPECT_EQ(watch.CutStalled(start + absl::Seconds(11)), 0);
  EXPECT_EQ(cancelled_stalled, 1);
}

}  // namespace
}  // namespace samverka::coordinator
