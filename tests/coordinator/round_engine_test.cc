#include "coordinator/round_engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "common/codec.h"

namespace samverka::coordinator {
namespace {

using ::testing::HasSubstr;

const absl::Time kStart = absl::FromUnixSeconds(1'000'000);

ModelParameters Initial() {
  ModelParameters g;
  g.layout.tensors = {{"w", {2}}};
  g.values = {1.0f, -1.0f};
  return g;
}

std::string Update(std::vector<float> values) {
  ModelParameters u = Initial();
  u.values = std::move(values);
  return EncodeParameters(u);
}

std::unique_ptr<RoundEngine> MakeEngine(int clients, int per_round, int min_clients,
                                        absl::Duration deadline = absl::Minutes(5)) {
  RoundOptions options;
  options.clients_per_round = per_round;
  options.min_clients = min_clients;
  options.train_deadline = deadline;
  auto engine = RoundEngine::Create(options, MakeFedAvg(), Initial(), /*seed=*/7);
  EXPECT_TRUE(engine.ok()) << engine.status();
  for (int i = 0; i < clients; ++i) (*engine)->AddClient("site-" + std::to_string(i));
  return std::move(*engine);
}

TEST(RoundEngineTest, SelectsDistinctCohortDeterministically) {
  auto a = MakeEngine(20, 5, 1);
  auto b = MakeEngine(20, 5, 1);
  absl::StatusOr<RoundPlan> plan_a = a->StartRound(kStart);
  absl::StatusOr<RoundPlan> plan_b = b->StartRound(kStart);
  ASSERT_TRUE(plan_a.ok() && plan_b.ok());
  EXPECT_EQ(plan_a->cohort.size(), 5u);
  EXPECT_EQ(std::set<std::string>(plan_a->cohort.begin(), plan_a->cohort.end()).size(), 5u);
  EXPECT_EQ(plan_a->cohort, plan_b->cohort);
  EXPECT_EQ(plan_a->round, 1);
  EXPECT_EQ(plan_a->task.model_digest, Sha256Hex(*plan_a->encoded_global));
}

TEST(RoundEngineTest, FractionSelectsCeilingOfOnlineClients) {
  RoundOptions options;
  options.fraction = 0.25;
  auto engine = *RoundEngine::Create(options, MakeFedAvg(), Initial(), 1);
  for (int i = 0; i < 10; ++i) engine->AddClient("c" + std::to_string(i));
  EXPECT_EQ(engine->StartRound(kStart)->cohort.size(), 3u);  // ceil(2.5)
}

TEST(RoundEngineTest, RefusesToStartWithTooFewClients) {
  auto engine = MakeEngine(2, 2, 3);
  absl::StatusOr<RoundPlan> plan = engine->StartRound(kStart);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("needs at least 3"));
}

TEST(RoundEngineTest, AggregatesWhenEveryMemberAnswered) {
  auto engine = MakeEngine(2, 2, 2);
  RoundPlan plan = *engine->StartRound(kStart);
  ASSERT_TRUE(engine->SubmitUpdate(plan.cohort[0], 1, 10, Update({1, 1}), {{"train_loss", 2}}).ok());
  EXPECT_FALSE(engine->Poll(kStart).has_value()) << "one member still training";
  ASSERT_TRUE(engine->SubmitUpdate(plan.cohort[1], 1, 30, Update({5, -3}), {{"train_loss", 1}}).ok());
  std::optional<RoundResult> result = engine->Poll(kStart);
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->succeeded) << result->failure_reason;
  EXPECT_EQ(result->updates, 2);
  // Weighted mean update: (10*1 + 30*5, 10*1 + 30*-3) / 40 = (4, -2).
  EXPECT_EQ(engine->global_model()->values, (std::vector<float>{5, -3}));
  // Weighted train loss: (10*2 + 30*1) / 40.
  EXPECT_DOUBLE_EQ(result->train_loss, 50.0 / 40);
  EXPECT_EQ(result->model_digest, Sha256Hex(EncodeParameters(*engine->global_model())));
  EXPECT_EQ(engine->next_round(), 2);
}

TEST(RoundEngineTest, APreparedRoundStartsFromFreshSums) {
  auto engine = MakeEngine(1, 1, 1);
  for (int round = 1; round <= 2; ++round) {
    ASSERT_TRUE(engine->PrepareRound().ok());
    RoundPlan plan = *engine->StartRound(kStart);
    EXPECT_EQ(engine->PrepareRound().code(), absl::StatusCode::kFailedPrecondition)
        << "round " << round << " is open";
    ASSERT_TRUE(engine->SubmitUpdate(plan.cohort[0], round, 10, Update({2, 2}), {}).ok());
    ASSERT_TRUE(engine->Poll(kStart).has_value());
  }
  // Each round adds its one update (2, 2) once: the second round's sums did
  // not keep the first's.
  EXPECT_EQ(engine->global_model()->values, (std::vector<float>{5, 3}));
}

TEST(RoundEngineTest, RejectsBadUpdatesAndStoresNothing) {
  auto engine = MakeEngine(3, 2, 1);
  RoundPlan plan = *engine->StartRound(kStart);
  const std::string member = plan.cohort[0];
  std::string outsider;
  for (const std::string& c : engine->clients()) {
    if (c != plan.cohort[0] && c != plan.cohort[1]) outsider = c;
  }
  EXPECT_EQ(engine->SubmitUpdate(outsider, 1, 5, Update({1, 1}), {}).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(engine->SubmitUpdate(member, 2, 5, Update({1, 1}), {}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine->SubmitUpdate(member, 1, 5, Update({NAN, 1}), {}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->SubmitUpdate(member, 1, 5, Update({INFINITY, 1}), {}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->SubmitUpdate(member, 1, 5, "garbage", {}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->SubmitUpdate(member, 1, 0, Update({1, 1}), {}).code(),
            absl::StatusCode::kInvalidArgument);
  ModelParameters wrong_shape;
  wrong_shape.layout.tensors = {{"w", {3}}};
  wrong_shape.values = {1, 2, 3};
  EXPECT_EQ(engine->SubmitUpdate(member, 1, 5, EncodeParameters(wrong_shape), {}).code(),
            absl::StatusCode::kInvalidArgument);
  // None of that was absorbed: a good update still goes in, once.
  ASSERT_TRUE(engine->SubmitUpdate(member, 1, 5, Update({2, 2}), {}).ok());
  EXPECT_EQ(engine->SubmitUpdate(member, 1, 5, Update({2, 2}), {}).code(),
            absl::StatusCode::kAlreadyExists);
  engine->ReportFailure(plan.cohort[1], 1, "out of memory");
  std::optional<RoundResult> result = engine->Poll(kStart);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->updates, 1);
  EXPECT_EQ(result->missing, std::vector<std::string>{plan.cohort[1]});
  EXPECT_EQ(engine->global_model()->values, (std::vector<float>{3, 1}));
}

TEST(RoundEngineTest, DeadlineClosesWithQuorum) {
  auto engine = MakeEngine(3, 3, 2, absl::Seconds(60));
  RoundPlan plan = *engine->StartRound(kStart);
  ASSERT_TRUE(engine->SubmitUpdate(plan.cohort[0], 1, 1, Update({1, 1}), {}).ok());
  ASSERT_TRUE(engine->SubmitUpdate(plan.cohort[1], 1, 1, Update({1, 1}), {}).ok());
  EXPECT_FALSE(engine->Poll(kStart + absl::Seconds(59)).has_value());
  std::optional<RoundResult> result = engine->Poll(kStart + absl::Seconds(60));
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->succeeded);
  EXPECT_EQ(result->missing.size(), 1u);
}

TEST(RoundEngineTest, FailedRoundKeepsLastGoodModelAndNextRoundProceeds) {
  auto engine = MakeEngine(3, 3, 2, absl::Seconds(60));
  RoundPlan first = *engine->StartRound(kStart);
  ASSERT_TRUE(engine->SubmitUpdate(first.cohort[0], 1, 1, Update({9, 9}), {}).ok());
  std::optional<RoundResult> failed = engine->Poll(kStart + absl::Minutes(2));
  ASSERT_TRUE(failed.has_value());
  EXPECT_FALSE(failed->succeeded);
  EXPECT_THAT(failed->failure_reason, HasSubstr("only 1 of 3"));
  EXPECT_EQ(engine->global_model()->values, Initial().values);
  EXPECT_EQ(failed->model_digest, first.task.model_digest);
  // A late update for the failed round is refused.
  EXPECT_EQ(engine->SubmitUpdate(first.cohort[1], 1, 1, Update({1, 1}), {}).code(),
            absl::StatusCode::kFailedPrecondition);

  RoundPlan second = *engine->StartRound(kStart + absl::Minutes(3));
  EXPECT_EQ(second.round, 2);
  EXPECT_EQ(second.task.model_digest, first.task.model_digest);
  for (const std::string& c : second.cohort) {
    ASSERT_TRUE(engine->SubmitUpdate(c, 2, 1, Update({1, 1}), {}).ok());
  }
  std::optional<RoundResult> ok = engine->Poll(kStart + absl::Minutes(3));
  ASSERT_TRUE(ok.has_value());
  EXPECT_TRUE(ok->succeeded);
  EXPECT_EQ(engine->global_model()->values, (std::vector<float>{2, 0}));
}

TEST(RoundEngineTest, OptionsAreValidated) {
  RoundOptions options;
  EXPECT_FALSE(options.Validate().ok()) << "neither clients_per_round nor fraction";
  options.clients_per_round = 2;
  options.min_clients = 3;
  options.max_clients = 2;
  EXPECT_THAT(std::string(options.Validate().message()), HasSubstr("max_clients"));
}

TEST(RoundEngineTest, SitesSittingOutAreDrawnOnlyToReachMinClients) {
  // Five sites, cohorts of three: the two sitting out are never drawn while
  // three others are available.
  auto engine = MakeEngine(5, 3, 2);
  const std::set<std::string> out = {"site-0", "site-3"};
  absl::StatusOr<RoundPlan> plan = engine->StartRound(kStart, out);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->cohort, ::testing::UnorderedElementsAre("site-1", "site-2", "site-4"));

  // With only one other site, one of those sitting out fills min_clients.
  auto few = MakeEngine(3, 3, 2);
  plan = few->StartRound(kStart, {"site-0", "site-1"});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->cohort.size(), 2u);
  EXPECT_EQ(plan->cohort[0], "site-2");
  EXPECT_TRUE(plan->cohort[1] == "site-0" || plan->cohort[1] == "site-1");

  // All sitting out: min_clients of them still make a round.
  auto all = MakeEngine(3, 3, 2);
  plan = all->StartRound(kStart, {"site-0", "site-1", "site-2"});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->cohort.size(), 2u);
}

}  // namespace
}  // namespace samverka::coordinator
