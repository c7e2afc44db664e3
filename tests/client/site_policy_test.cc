#include "client/site_policy.h"

#include "security/dp/accountant.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace samverka::client {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

ClientTask Train(const std::string& model = "mlp", int cohort = 5, bool secure = false) {
  ClientTask task;
  task.task_id = "round-1-train";
  task.round = 1;
  task.kind = TaskKind::kTrain;
  task.model = model;
  task.cohort_size = cohort;
  if (secure) task.secure_aggregation = SecureAggregationTask{"config", 1};
  return task;
}

std::string Reason(const absl::Status& s) { return std::string(s.message()); }

TEST(SitePolicyTest, RequiresSecureAggregationForTrainingOnly) {
  SitePolicy policy;
  policy.require_secure_aggregation = true;
  auto enforcer = SitePolicyEnforcer::Create(policy, "");
  ASSERT_TRUE(enforcer.ok());
  const absl::Status plain = enforcer->Check(Train(), absl::Now());
  EXPECT_EQ(plain.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Reason(plain), HasSubstr("require_secure_aggregation"));
  EXPECT_TRUE(enforcer->Check(Train("mlp", 5, true), absl::Now()).ok());
  ClientTask eval = Train();
  eval.kind = TaskKind::kEvaluate;
  EXPECT_TRUE(enforcer->Check(eval, absl::Now()).ok());
}

TEST(SitePolicyTest, RefusesSmallCohortsAndOtherModels) {
  SitePolicy policy;
  policy.min_cohort = 4;
  policy.allowed_models = {"mlp", "0123abcd"};
  auto enforcer = SitePolicyEnforcer::Create(policy, "", "0123abcd");
  ASSERT_TRUE(enforcer.ok());
  EXPECT_TRUE(enforcer->Check(Train("mlp", 4), absl::Now()).ok());
  const absl::Status small = enforcer->Check(Train("mlp", 3), absl::Now());
  EXPECT_THAT(Reason(small), HasSubstr("cohort has 3 sites"));
  EXPECT_THAT(Reason(small), HasSubstr("min_cohort"));
  EXPECT_THAT(Reason(enforcer->Check(Train("cnn"), absl::Now())), HasSubstr("allowed_models"));
  // The digest allows the site's own TorchScript file, never a built-in.
  EXPECT_TRUE(enforcer->Check(Train("/models/site.pt"), absl::Now()).ok());
  SitePolicy by_name;
  by_name.allowed_models = {"site.pt"};
  auto named = SitePolicyEnforcer::Create(by_name, "");
  ASSERT_TRUE(named.ok());
  EXPECT_TRUE(named->Check(Train("/models/site.pt"), absl::Now()).ok());
  EXPECT_FALSE(named->Check(Train("logreg"), absl::Now()).ok());
}

TEST(SitePolicyTest, CountsRoundsInAnyTwentyFourHours) {
  SitePolicy policy;
  policy.max_rounds_per_day = 2;
  auto enforcer = SitePolicyEnforcer::Create(policy, "");
  ASSERT_TRUE(enforcer.ok());
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  ASSERT_TRUE(enforcer->RecordTraining(Train(), t0).ok());
  ASSERT_TRUE(enforcer->RecordTraining(Train(), t0 + absl::Hours(1)).ok());
  const absl::Status third = enforcer->Check(Train(), t0 + absl::Hours(2));
  EXPECT_THAT(Reason(third), HasSubstr("already trained 2 rounds"));
  // 24 hours after the first round, one slot is free again.
  EXPECT_FALSE(enforcer->Check(Train(), t0 + absl::Hours(24) - absl::Seconds(1)).ok());
  EXPECT_TRUE(enforcer->Check(Train(), t0 + absl::Hours(24)).ok());
}

TEST(SitePolicyTest, TheLedgerSurvivesARestartAndACorruptOneIsAnError) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("samverka_policy_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string ledger = (dir / "site-ledger.json").string();
  SitePolicy policy;
  policy.max_rounds_per_day = 1;
  const absl::Time now = absl::Now();
  {
    auto enforcer = SitePolicyEnforcer::Create(policy, ledger);
    ASSERT_TRUE(enforcer.ok());
    ASSERT_TRUE(enforcer->RecordTraining(Train(), now).ok());
  }
  auto restarted = SitePolicyEnforcer::Create(policy, ledger);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_FALSE(restarted->Check(Train(), now + absl::Minutes(5)).ok());
  std::ofstream(ledger, std::ios::trunc) << "{\"trained_unix_seconds\": [\"x\"";
  auto corrupt = SitePolicyEnforcer::Create(policy, ledger);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Reason(corrupt.status()), HasSubstr(ledger));
  fs::remove_all(dir);
}

TEST(SitePolicyTest, KeepsTheSitesPrivacyLossWithinItsBudget) {
  ClientTask dp_task = Train();
  dp_task.dp = DpOptions{1.0, 1.1, 0.01, 1e-5};
  // The budget: exactly what two such rounds cost (security/dp's
  // accountant, itself checked against TF Privacy and Opacus values).
  absl::StatusOr<security::dp::PrivacySpent> two = security::dp::ComputeEpsilon(0.01, 1.1, 2, 1e-5);
  ASSERT_TRUE(two.ok());
  SitePolicy policy;
  policy.max_epsilon = two->epsilon * 1.0001;
  auto enforcer = SitePolicyEnforcer::Create(policy, "");
  ASSERT_TRUE(enforcer.ok());
  // No DP, or no stated cost: refused.
  EXPECT_THAT(Reason(enforcer->Check(Train(), absl::Now())), HasSubstr("only with differential privacy"));
  ClientTask unstated = dp_task;
  unstated.dp.noise_multiplier = 0;
  EXPECT_THAT(Reason(enforcer->Check(unstated, absl::Now())), HasSubstr("does not state"));
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(enforcer->Check(dp_task, absl::Now()).ok()) << round;
    ASSERT_TRUE(enforcer->RecordTraining(dp_task, absl::Now()).ok());
  }
  EXPECT_NEAR(*enforcer->EpsilonSpent(), two->epsilon, 1e-9);
  const absl::Status third = enforcer->Check(dp_task, absl::Now());
  EXPECT_THAT(Reason(third), HasSubstr("over its budget max_epsilon"));
}

TEST(SitePolicyTest, BadSettingsAreRejected) {
  SitePolicy policy;
  policy.min_cohort = -1;
  EXPECT_FALSE(SitePolicyEnforcer::Create(policy, "").ok());
  policy = {};
  policy.max_rounds_per_day = -3;
  EXPECT_THAT(Reason(policy.Validate()), HasSubstr("max_rounds_per_day"));
  policy = {};
  policy.allowed_models = {""};
  EXPECT_FALSE(policy.Validate().ok());
}

}  // namespace
}  // namespace samverka::client
