#include "coordinator/strategy.h"

#include <gtest/gtest.h>

namespace samverka::coordinator {
namespace {

ModelParameters Global() {
  ModelParameters g;
  g.layout.tensors = {{"w", {3}}};
  g.values = {1.0f, 2.0f, 3.0f};
  return g;
}

TEST(FedAvgTest, SampleWeightedMeanOfUpdatesAddedToGlobal) {
  std::unique_ptr<Strategy> fedavg = MakeFedAvg();
  ASSERT_TRUE(fedavg->BeginRound(Global()).ok());
  // Client A: 1 sample, update (4, 0, -4); client B: 3 samples, update (0, 4, 8).
  ASSERT_TRUE(fedavg->Absorb(std::vector<float>{4, 0, -4}, 1).ok());
  ASSERT_TRUE(fedavg->Absorb(std::vector<float>{0, 4, 8}, 3).ok());
  absl::StatusOr<std::vector<float>> next = fedavg->Finish();
  ASSERT_TRUE(next.ok()) << next.status();
  // Mean update = (4 + 0, 0 + 12, -4 + 24) / 4 = (1, 3, 5).
  EXPECT_EQ(*next, (std::vector<float>{2, 5, 8}));
}

TEST(FedAvgTest, ServerLearningRateScalesTheStep) {
  std::unique_ptr<Strategy> fedavg = MakeFedAvg(0.5);
  ASSERT_TRUE(fedavg->BeginRound(Global()).ok());
  ASSERT_TRUE(fedavg->Absorb(std::vector<float>{2, 2, 2}, 5).ok());
  EXPECT_EQ(*fedavg->Finish(), (std::vector<float>{2, 3, 4}));
}

TEST(FedAvgTest, RejectsBadInputAndEmptyRounds) {
  std::unique_ptr<Strategy> fedavg = MakeFedAvg();
  ASSERT_TRUE(fedavg->BeginRound(Global()).ok());
  EXPECT_EQ(fedavg->Absorb(std::vector<float>{1, 2}, 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fedavg->Absorb(std::vector<float>{1, 2, 3}, 0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fedavg->Finish().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(FedAvgTest, BeginRoundForgetsThePreviousRound) {
  std::unique_ptr<Strategy> fedavg = MakeFedAvg();
  ASSERT_TRUE(fedavg->BeginRound(Global()).ok());
  ASSERT_TRUE(fedavg->Absorb(std::vector<float>{100, 100, 100}, 1).ok());
  ASSERT_TRUE(fedavg->BeginRound(Global()).ok());
  ASSERT_TRUE(fedavg->Absorb(std::vector<float>{1, 1, 1}, 1).ok());
  EXPECT_EQ(*fedavg->Finish(), (std::vector<float>{2, 3, 4}));
}

}  // namespace
}  // namespace samverka::coordinator
