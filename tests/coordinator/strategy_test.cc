#include "coordinator/strategy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

namespace samverka::coordinator {
namespace {

using ::testing::HasSubstr;

ModelParameters Global() {
  ModelParameters g;
  g.layout.tensors = {{"w", {3}}};
  g.values = {1.0f, 2.0f, 3.0f};
  return g;
}

TEST(FedAvgTest, SampleWeightedMeanOfUpdatesAddedToGlobal) {
  std::unique_ptr<Strategy> fedavg = MakeFedAvg();
  ASSERT_TRUE(fedavg->BeginRound(Global().values.size()).ok());
  // Client A: 1 sample, update (4, 0, -4); client B: 3 samples, update (0, 4, 8).
  ASSERT_TRUE(fedavg->Absorb(std::vector<float>{4, 0, -4}, 1).ok());
  ASSERT_TRUE(fedavg->Absorb(std::vector<float>{0, 4, 8}, 3).ok());
  absl::StatusOr<std::vector<float>> next = fedavg->Finish(Global().values);
  ASSERT_TRUE(next.ok()) << next.status();
  // Mean update = (4 + 0, 0 + 12, -4 + 24) / 4 = (1, 3, 5).
  EXPECT_EQ(*next, (std::vector<float>{2, 5, 8}));
}

TEST(FedAvgTest, ServerLearningRateScalesTheStep) {
  std::unique_ptr<Strategy> fedavg = MakeFedAvg(0.5);
  ASSERT_TRUE(fedavg->BeginRound(Global().values.size()).ok());
  ASSERT_TRUE(fedavg->Absorb(std::vector<float>{2, 2, 2}, 5).ok());
  EXPECT_EQ(*fedavg->Finish(Global().values), (std::vector<float>{2, 3, 4}));
}

TEST(FedAvgTest, RejectsBadInputAndEmptyRounds) {
  std::unique_ptr<Strategy> fedavg = MakeFedAvg();
  ASSERT_TRUE(fedavg->BeginRound(Global().values.size()).ok());
  EXPECT_EQ(fedavg->Absorb(std::vector<float>{1, 2}, 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fedavg->Absorb(std::vector<float>{1, 2, 3}, 0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fedavg->Finish(Global().values).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(FedAvgTest, FinishNeedsTheModelTheRoundStartedFrom) {
  std::unique_ptr<Strategy> fedavg = MakeFedAvg();
  ASSERT_TRUE(fedavg->BeginRound(Global().values.size()).ok());
  ASSERT_TRUE(fedavg->Absorb(std::vector<float>{1, 1, 1}, 1).ok());
  EXPECT_EQ(fedavg->Finish(std::vector<float>{1, 2}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FedAvgTest, BeginRoundForgetsThePreviousRound) {
  std::unique_ptr<Strategy> fedavg = MakeFedAvg();
  ASSERT_TRUE(fedavg->BeginRound(Global().values.size()).ok());
  ASSERT_TRUE(fedavg->Absorb(std::vector<float>{100, 100, 100}, 1).ok());
  ASSERT_TRUE(fedavg->BeginRound(Global().values.size()).ok());
  ASSERT_TRUE(fedavg->Absorb(std::vector<float>{1, 1, 1}, 1).ok());
  EXPECT_EQ(*fedavg->Finish(Global().values), (std::vector<float>{2, 3, 4}));
}


// --- helpers for the strategies below ---------------------------------------

ModelParameters Model2(float a, float b) {
  ModelParameters g;
  g.layout.tensors = {{"w", {2}}};
  g.values = {a, b};
  return g;
}

std::unique_ptr<Strategy> Make(StrategyOptions options) {
  absl::StatusOr<std::unique_ptr<Strategy>> strategy = MakeStrategy(options);
  EXPECT_TRUE(strategy.ok()) << strategy.status();
  return strategy.ok() ? std::move(*strategy) : nullptr;
}

// Runs one round from `global` with (update, weight) pairs; returns the next model.
std::vector<float> Round(Strategy& s, const ModelParameters& global,
                         const std::vector<std::pair<std::vector<float>, double>>& updates) {
  EXPECT_TRUE(s.BeginRound(global.values.size()).ok());
  for (const auto& [u, w] : updates) EXPECT_TRUE(s.Absorb(u, w).ok());
  absl::StatusOr<std::vector<float>> next = s.Finish(global.values);
  EXPECT_TRUE(next.ok()) << next.status();
  return next.ok() ? *next : std::vector<float>{};
}

void ExpectNear(const std::vector<float>& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], 1e-6) << "index " << i;
  }
}

// --- server optimisers --------------------------------------------------------

TEST(FedAvgMTest, MomentumCarriesOverRounds) {
  // Hsu et al. 2019: v <- beta v + mean; w <- w + lr v. beta 0.5, lr 0.5.
  StrategyOptions o;
  o.name = "fedavgm";
  o.server_momentum = 0.5;
  o.server_learning_rate = 0.5;
  std::unique_ptr<Strategy> s = Make(o);
  // Round 1: mean of (2, 0) and (0, 4) with equal weights = (1, 2); v = (1, 2);
  // w = (0, 0) + 0.5 (1, 2) = (0.5, 1).
  std::vector<float> w1 = Round(*s, Model2(0, 0), {{{2, 0}, 3}, {{0, 4}, 3}});
  ExpectNear(w1, {0.5, 1});
  // Round 2: mean (2, -2); v = 0.5 (1, 2) + (2, -2) = (2.5, -1);
  // w = (0.5, 1) + 0.5 (2.5, -1) = (1.75, 0.5).
  ExpectNear(Round(*s, Model2(w1[0], w1[1]), {{{2, -2}, 1}}), {1.75, 0.5});
}

TEST(FedAvgMTest, ZeroMomentumIsFedAvg) {
  StrategyOptions o;
  o.name = "fedavgm";
  o.server_momentum = 0;
  std::unique_ptr<Strategy> s = Make(o);
  ExpectNear(Round(*s, Model2(1, 1), {{{2, 0}, 1}}), {3, 1});
  ExpectNear(Round(*s, Model2(3, 1), {{{0, 2}, 1}}), {3, 3});
}

// Reddi et al. 2021, Algorithm 2, tau 1 (so v starts at 1), beta1 = beta2 = 0.5,
// lr 1. Round 1: weighted mean of (1, 2) x3 and (25, -10) x1 = (7, -1); round 2:
// (1, 1). m1 = 0.5 * (7, -1) = (3.5, -0.5); m2 = 0.5 m1 + 0.5 (1, 1) = (2.25, 0.25).
StrategyOptions Adaptive(const std::string& name) {
  StrategyOptions o;
  o.name = name;
  o.server_learning_rate = 1;
  o.beta1 = 0.5;
  o.beta2 = 0.5;
  o.tau = 1;
  return o;
}

void RunTwoAdaptiveRounds(Strategy& s, std::vector<float>* w1, std::vector<float>* w2) {
  *w1 = Round(s, Model2(0, 0), {{{1, 2}, 3}, {{25, -10}, 1}});
  *w2 = Round(s, Model2((*w1)[0], (*w1)[1]), {{{1, 1}, 2}});
}

TEST(FedAdamTest, TwoRoundsByHand) {
  std::unique_ptr<Strategy> s = Make(Adaptive("fedadam"));
  std::vector<float> w1, w2;
  RunTwoAdaptiveRounds(*s, &w1, &w2);
  // v1 = 0.5 * 1 + 0.5 * (49, 1) = (25, 1); step = m1 / (sqrt(v1) + 1).
  const double a1 = 3.5 / 6, b1 = -0.5 / 2;
  ExpectNear(w1, {a1, b1});
  // v2 = 0.5 (25, 1) + 0.5 (1, 1) = (13, 1).
  ExpectNear(w2, {a1 + 2.25 / (std::sqrt(13.0) + 1), b1 + 0.25 / 2});
}

TEST(FedYogiTest, TwoRoundsByHandIncludingBothSigns) {
  std::unique_ptr<Strategy> s = Make(Adaptive("fedyogi"));
  std::vector<float> w1, w2;
  RunTwoAdaptiveRounds(*s, &w1, &w2);
  // v1 = v0 - 0.5 d^2 sign(v0 - d^2): (1 - 0.5*49*(-1), 1 - 0.5*1*0) = (25.5, 1).
  const double a1 = 3.5 / (std::sqrt(25.5) + 1), b1 = -0.5 / 2;
  ExpectNear(w1, {a1, b1});
  // v2: (25.5 - 0.5*1*(+1), 1 - 0) = (25, 1).
  ExpectNear(w2, {a1 + 2.25 / 6, b1 + 0.25 / 2});
}

TEST(FedAdagradTest, TwoRoundsByHand) {
  std::unique_ptr<Strategy> s = Make(Adaptive("fedadagrad"));
  std::vector<float> w1, w2;
  RunTwoAdaptiveRounds(*s, &w1, &w2);
  // v1 = 1 + (49, 1) = (50, 2); v2 = v1 + (1, 1) = (51, 3).
  const double a1 = 3.5 / (std::sqrt(50.0) + 1), b1 = -0.5 / (std::sqrt(2.0) + 1);
  ExpectNear(w1, {a1, b1});
  ExpectNear(w2, {a1 + 2.25 / (std::sqrt(51.0) + 1), b1 + 0.25 / (std::sqrt(3.0) + 1)});
}

TEST(FedAdamTest, WorksOnTheSumThatSecureAggregationReveals) {
  std::unique_ptr<Strategy> s = Make(Adaptive("fedadam"));
  EXPECT_FALSE(s->needs_individual_updates());
  ASSERT_TRUE(s->BeginRound(2).ok());
  // 3 * (1, 2) + 1 * (25, -10) = (28, -4), total weight 4: the same round 1.
  ASSERT_TRUE(s->AbsorbAggregate(std::vector<double>{28, -4}, 4).ok());
  ExpectNear(*s->Finish(Model2(0, 0).values), {3.5 / 6, -0.5 / 2});
}

TEST(FedAdamTest, DefaultServerLearningRateIsReddisOneHundredth) {
  StrategyOptions o;
  o.name = "fedadam";
  EXPECT_EQ(o.effective_server_learning_rate(), 0.01);
  o.name = "fedavg";
  EXPECT_EQ(o.effective_server_learning_rate(), 1.0);
  // One round from 0 with update (1): m = 0.1, v = 0.99e-6 + 0.01, step =
  // 0.01 * 0.1 / (sqrt(v) + 1e-3).
  std::unique_ptr<Strategy> s = Make(StrategyOptions{.name = "fedadam"});
  ModelParameters g;
  g.layout.tensors = {{"w", {1}}};
  g.values = {0};
  std::vector<float> next = Round(*s, g, {{{1}, 1}});
  ExpectNear(next, {0.01 * 0.1 / (std::sqrt(0.99e-6 + 0.01) + 1e-3)});
}

// --- robust strategies ------------------------------------------------------

TEST(MedianTest, CoordinateWiseMedianIgnoresWeights) {
  std::unique_ptr<Strategy> s = Make(StrategyOptions{.name = "median"});
  EXPECT_TRUE(s->needs_individual_updates());
  ModelParameters g;
  g.layout.tensors = {{"w", {3}}};
  g.values = {10, 20, 30};
  // Odd count: columns (1, 3, 100), (5, -2, 0), (-1, 0, 2) -> (3, 0, 0).
  ExpectNear(Round(*s, g, {{{1, 5, -1}, 1}, {{3, -2, 0}, 1}, {{100, 0, 2}, 1000}}),
             {13, 20, 30});
  // Even count: (1, 2, 3, 100) -> 2.5, (-2, 0, 1, 5) -> 0.5, (-50, -1, 0, 2) -> -0.5.
  ExpectNear(Round(*s, g,
                   {{{1, 5, -1}, 1}, {{3, -2, 0}, 1}, {{100, 0, 2}, 1}, {{2, 1, -50}, 1}}),
             {12.5, 20.5, 29.5});
}

TEST(TrimmedMeanTest, DropsTheExtremesAtEachEnd) {
  StrategyOptions o{.name = "trimmed-mean"};
  o.trim_fraction = 0.25;
  std::unique_ptr<Strategy> s = Make(o);
  // n = 5, k = floor(1.25) = 1: (1, 2, 3, 4, 100) -> (2 + 3 + 4) / 3 = 3;
  // (-10, 0, 0, 3, 6) -> (0 + 0 + 3) / 3 = 1.
  ExpectNear(Round(*s, Model2(0, 0),
                   {{{100, 0}, 1}, {{1, -10}, 1}, {{2, 6}, 1}, {{3, 0}, 1}, {{4, 3}, 1}}),
             {3, 1});
  // n = 3, k = floor(0.75) = 0: the plain mean.
  ExpectNear(Round(*s, Model2(0, 0), {{{3, 0}, 1}, {{0, 3}, 5}, {{0, 0}, 1}}), {1, 1});
}

// Five updates, f = 1, so each score sums the n - f - 2 = 2 smallest squared
// distances. u4 is the outlier.
//   u0 (0,0): to u1..u4 = 1, 4, 3.25, 200    -> 1 + 3.25   = 4.25
//   u1 (1,0): 1, 5, 2.25, 181                -> 1 + 2.25   = 3.25
//   u2 (0,2): 4, 5, 1.25, 164                -> 1.25 + 4   = 5.25
//   u3 (1,1.5): 3.25, 2.25, 1.25, 153.25     -> 1.25 + 2.25 = 3.5
//   u4 (10,10): 200, 181, 164, 153.25        -> 317.25
// Order by score: u1, u3, u0, u2, u4.
std::vector<std::pair<std::vector<float>, double>> KrumUpdates() {
  return {{{0, 0}, 1}, {{1, 0}, 1}, {{0, 2}, 1}, {{1, 1.5f}, 1}, {{10, 10}, 1}};
}

TEST(KrumTest, KrumPicksTheLowestScore) {
  StrategyOptions o{.name = "krum"};
  o.krum_byzantine = 1;
  o.krum_selected = 1;
  ExpectNear(Round(*Make(o), Model2(0, 0), KrumUpdates()), {1, 0});
}

TEST(KrumTest, MultiKrumAveragesTheBestAndLeavesTheOutlierOut) {
  StrategyOptions o{.name = "krum"};
  o.krum_byzantine = 1;
  o.krum_selected = 2;
  ExpectNear(Round(*Make(o), Model2(0, 0), KrumUpdates()), {1, 0.75});
  // Default m = n - f = 4: u0..u3, not u4.
  o.krum_selected = 0;
  ExpectNear(Round(*Make(o), Model2(0, 0), KrumUpdates()), {0.5, 0.875});
}

TEST(KrumTest, TooFewUpdatesFailTheRound) {
  StrategyOptions o{.name = "krum"};
  o.krum_byzantine = 1;
  std::unique_ptr<Strategy> s = Make(o);
  ASSERT_TRUE(s->BeginRound(2).ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(s->Absorb(std::vector<float>{1, 1}, 1).ok());
  absl::StatusOr<std::vector<float>> next = s->Finish(Model2(0, 0).values);
  EXPECT_EQ(next.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(next.status().message()), HasSubstr("2f + 2 = 4"));
}

TEST(RobustStrategyTest, RefusesTheSecureAggregate) {
  for (const char* name : {"median", "trimmed-mean", "krum"}) {
    std::unique_ptr<Strategy> s = Make(StrategyOptions{.name = name});
    ASSERT_TRUE(s->BeginRound(2).ok());
    EXPECT_EQ(s->AbsorbAggregate(std::vector<double>{1, 1}, 1).code(),
              absl::StatusCode::kFailedPrecondition)
        << name;
    EXPECT_EQ(s->Absorb(std::vector<float>{1}, 1).code(), absl::StatusCode::kInvalidArgument);
  }
}

// --- options and factory ------------------------------------------------------

std::string Error(const StrategyOptions& o) { return std::string(o.Validate().message()); }

TEST(StrategyOptionsTest, UnknownNameListsTheKnownOnes) {
  absl::StatusOr<std::unique_ptr<Strategy>> s = MakeStrategy({.name = "fedsgd"});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("unknown strategy 'fedsgd'; known strategies are fedavg, fedavgm"));
}

TEST(StrategyOptionsTest, BadParametersNameTheParameter) {
  StrategyOptions o{.name = "trimmed-mean"};
  o.trim_fraction = 0.5;
  EXPECT_THAT(Error(o), HasSubstr("trim_fraction = 0.5"));
  o = {.name = "fedyogi"};
  o.tau = 0;
  EXPECT_THAT(Error(o), HasSubstr("tau = 0"));
  o = {.name = "fedadam"};
  o.beta2 = 1;
  EXPECT_THAT(Error(o), HasSubstr("beta2 = 1"));
  o = {.name = "fedadam"};
  o.beta1 = -0.1;
  EXPECT_THAT(Error(o), HasSubstr("beta1 = -0.1"));
  o = {.name = "fedavg"};
  o.server_learning_rate = 0;
  EXPECT_THAT(Error(o), HasSubstr("server_learning_rate = 0"));
  o = {.name = "fedavgm"};
  o.server_momentum = 1;
  EXPECT_THAT(Error(o), HasSubstr("server_momentum = 1"));
  o = {.name = "krum"};
  o.krum_byzantine = -1;
  EXPECT_THAT(Error(o), HasSubstr("krum_byzantine = -1"));
  o = {.name = "krum"};
  o.krum_selected = -2;
  EXPECT_THAT(Error(o), HasSubstr("krum_selected = -2"));
}

TEST(StrategyOptionsTest, ValidateForTheFederation) {
  StrategyOptions krum{.name = "krum"};
  krum.krum_byzantine = 2;
  EXPECT_THAT(std::string(krum.ValidateFor(6, false, 0).message()),
              HasSubstr("more than 2f + 2 = 6 updates per round, but a round may have only 6"));
  EXPECT_TRUE(krum.ValidateFor(7, false, 0).ok());
  krum.krum_selected = 6;
  EXPECT_THAT(std::string(krum.ValidateFor(7, false, 0).message()), HasSubstr("krum_selected = 6"));

  for (const char* name : {"median", "trimmed-mean", "krum"}) {
    absl::Status s = StrategyOptions{.name = name}.ValidateFor(10, true, 0);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr("secure aggregation reveals only their sum"));
  }
  EXPECT_TRUE(StrategyOptions{.name = "fedyogi"}.ValidateFor(1, true, 0).ok());

  EXPECT_THAT(std::string(StrategyOptions{.name = "fedprox"}.ValidateFor(1, false, 0).message()),
              HasSubstr("fedprox needs proximal_mu > 0"));
  EXPECT_TRUE(StrategyOptions{.name = "fedprox"}.ValidateFor(1, false, 0.01).ok());
}

TEST(StrategyOptionsTest, EveryKnownNameMakesThatStrategy) {
  for (const std::string& name : StrategyNames()) {
    absl::StatusOr<std::unique_ptr<Strategy>> s = MakeStrategy({.name = name});
    ASSERT_TRUE(s.ok()) << name << ": " << s.status();
    // fedprox is FedAvg at the server; its term lives in the client trainer.
    EXPECT_EQ((*s)->name(), name == "fedprox" ? "fedavg" : name);
    EXPECT_EQ((*s)->needs_individual_updates(), StrategyOptions{.name = name}.needs_individual_updates());
  }
}

TEST(StrategyStateTest, ModelOfAnotherSizeIsRejected) {
  std::unique_ptr<Strategy> s = Make(Adaptive("fedadam"));
  Round(*s, Model2(0, 0), {{{1, 1}, 1}});
  EXPECT_EQ(s->BeginRound(Global().values.size()).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace samverka::coordinator
