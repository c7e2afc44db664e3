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

// The SHA-256 of some TorchScript file a study brings.
const std::string kDigest(64, 'a');

TaskScope Scope(const std::string& dataset = "breast", const std::string& digest = "") {
  return TaskScope{dataset, digest};
}

TEST(SitePolicyTest, RequiresSecureAggregationForTrainingOnly) {
  SitePolicy policy;
  policy.require_secure_aggregation = true;
  auto enforcer = SitePolicyEnforcer::Create(policy, "");
  ASSERT_TRUE(enforcer.ok());
  const absl::Status plain = enforcer->Check(Train(), Scope(), absl::Now());
  EXPECT_EQ(plain.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Reason(plain), HasSubstr("require_secure_aggregation"));
  EXPECT_TRUE(enforcer->Check(Train("mlp", 5, true), Scope(), absl::Now()).ok());
  ClientTask eval = Train();
  eval.kind = TaskKind::kEvaluate;
  EXPECT_TRUE(enforcer->Check(eval, Scope(), absl::Now()).ok());
}

TEST(SitePolicyTest, RefusesSmallCohortsAndOtherModels) {
  SitePolicy policy;
  policy.min_cohort = 4;
  policy.allowed_models = {"mlp", kDigest};
  auto enforcer = SitePolicyEnforcer::Create(policy, "");
  ASSERT_TRUE(enforcer.ok()) << enforcer.status();
  const absl::Time now = absl::Now();
  EXPECT_TRUE(enforcer->Check(Train("mlp", 4), Scope(), now).ok());
  const absl::Status small = enforcer->Check(Train("mlp", 3), Scope(), now);
  EXPECT_THAT(Reason(small), HasSubstr("cohort has 3 sites"));
  EXPECT_THAT(Reason(small), HasSubstr("min_cohort"));
  EXPECT_THAT(Reason(enforcer->Check(Train("cnn"), Scope(), now)), HasSubstr("allowed_models"));
  // A TorchScript file is allowed by the digest of its bytes, whatever the
  // study calls it; another file of the same name is not.
  EXPECT_TRUE(enforcer->Check(Train("net.pt"), Scope("breast", kDigest), now).ok());
  const absl::Status other = enforcer->Check(Train("net.pt"), Scope("breast", std::string(64, 'b')), now);
  EXPECT_THAT(Reason(other), HasSubstr("sha256 " + std::string(64, 'b')));
  // A file named like a built-in is still a file: its digest decides.
  EXPECT_FALSE(enforcer->Check(Train("mlp"), Scope("breast", std::string(64, 'b')), now).ok());
  // File names are not an allow-list entry any more: the name says nothing
  // of the bytes.
  SitePolicy by_name;
  by_name.allowed_models = {"site.pt"};
  EXPECT_THAT(Reason(by_name.Validate()), HasSubstr("sha256sum"));
  by_name.allowed_models = {std::string(64, 'A')};
  EXPECT_FALSE(by_name.Validate().ok());
}

TEST(SitePolicyTest, CountsRoundsInAnyTwentyFourHours) {
  SitePolicy policy;
  policy.max_rounds_per_day = 2;
  auto enforcer = SitePolicyEnforcer::Create(policy, "");
  ASSERT_TRUE(enforcer.ok());
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  ASSERT_TRUE(enforcer->RecordTraining(Train(), "breast", t0).ok());
  ASSERT_TRUE(enforcer->RecordTraining(Train(), "breast", t0 + absl::Hours(1)).ok());
  const absl::Status third = enforcer->Check(Train(), Scope(), t0 + absl::Hours(2));
  EXPECT_THAT(Reason(third), HasSubstr("already trained 2 rounds"));
  // 24 hours after the first round, one slot is free again.
  EXPECT_FALSE(enforcer->Check(Train(), Scope(), t0 + absl::Hours(24) - absl::Seconds(1)).ok());
  EXPECT_TRUE(enforcer->Check(Train(), Scope(), t0 + absl::Hours(24)).ok());
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
    ASSERT_TRUE(enforcer->RecordTraining(Train(), "breast", now).ok());
  }
  auto restarted = SitePolicyEnforcer::Create(policy, ledger);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_FALSE(restarted->Check(Train(), Scope(), now + absl::Minutes(5)).ok());
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
  EXPECT_THAT(Reason(enforcer->Check(Train(), Scope(), absl::Now())), HasSubstr("only with differential privacy"));
  ClientTask unstated = dp_task;
  unstated.dp.noise_multiplier = 0;
  EXPECT_THAT(Reason(enforcer->Check(unstated, Scope(), absl::Now())), HasSubstr("does not state"));
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(enforcer->Check(dp_task, Scope(), absl::Now()).ok()) << round;
    ASSERT_TRUE(enforcer->RecordTraining(dp_task, "breast", absl::Now()).ok());
  }
  EXPECT_NEAR(*enforcer->EpsilonSpent("breast"), two->epsilon, 1e-9);
  const absl::Status third = enforcer->Check(dp_task, Scope(), absl::Now());
  EXPECT_THAT(Reason(third), HasSubstr("over its budget max_epsilon"));
}

TEST(SitePolicyTest, CountsPrivacyPerDataSetOverEveryStudy) {
  ClientTask dp_task = Train();
  dp_task.dp = DpOptions{1.0, 1.1, 0.01, 1e-5};
  absl::StatusOr<security::dp::PrivacySpent> one = security::dp::ComputeEpsilon(0.01, 1.1, 1, 1e-5);
  absl::StatusOr<security::dp::PrivacySpent> two = security::dp::ComputeEpsilon(0.01, 1.1, 2, 1e-5);
  ASSERT_TRUE(one.ok() && two.ok());
  SitePolicy policy;
  policy.max_epsilon = two->epsilon * 1.0001;
  const fs::path dir = fs::path(::testing::TempDir()) / ("samverka_policy_ds_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string ledger = (dir / "site-ledger.json").string();
  {
    auto enforcer = SitePolicyEnforcer::Create(policy, ledger);
    ASSERT_TRUE(enforcer.ok());
    // Two studies on "breast" (the ledger does not care which study): its budget is spent.
    ClientTask first = dp_task, second = dp_task;
    first.study_id = "1111111111111111";
    second.study_id = "2222222222222222";
    ASSERT_TRUE(enforcer->RecordTraining(first, "breast", absl::Now()).ok());
    ASSERT_TRUE(enforcer->RecordTraining(second, "breast", absl::Now()).ok());
    EXPECT_THAT(Reason(enforcer->Check(dp_task, Scope("breast"), absl::Now())),
                HasSubstr("on data set 'breast'"));
    // Another data set has its own budget.
    EXPECT_TRUE(enforcer->Check(dp_task, Scope("lungs"), absl::Now()).ok());
    EXPECT_NEAR(*enforcer->EpsilonSpent("lungs"), 0.0, 1e-12);
  }
  // Restarted: the same, from the ledger.
  auto restarted = SitePolicyEnforcer::Create(policy, ledger);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_NEAR(*restarted->EpsilonSpent("breast"), two->epsilon, 1e-9);
  EXPECT_FALSE(restarted->Check(dp_task, Scope("breast"), absl::Now()).ok());
  // A ledger from before data sets had names: its one step is charged to
  // every data set, since which one it used is unknown.
  std::ofstream(ledger, std::ios::trunc)
      << "{\"trained_unix_seconds\": [1800000000], \"dp_steps\": [[0.01, 1.1]]}\n";
  auto old = SitePolicyEnforcer::Create(policy, ledger);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_NEAR(*old->EpsilonSpent("breast"), one->epsilon, 1e-9);
  EXPECT_NEAR(*old->EpsilonSpent("lungs"), one->epsilon, 1e-9);
  ASSERT_TRUE(old->RecordTraining(dp_task, "lungs", absl::Now()).ok());
  auto rewritten = SitePolicyEnforcer::Create(policy, ledger);
  ASSERT_TRUE(rewritten.ok()) << rewritten.status();
  EXPECT_NEAR(*rewritten->EpsilonSpent("lungs"), two->epsilon, 1e-9);
  EXPECT_NEAR(*rewritten->EpsilonSpent("breast"), one->epsilon, 1e-9);
  std::ofstream(ledger, std::ios::trunc)
      << "{\"trained_unix_seconds\": [], \"dp_steps_by_dataset\": {\"breast\": [[\"x\", 1]]}}\n";
  auto corrupt = SitePolicyEnforcer::Create(policy, ledger);
  EXPECT_EQ(corrupt.status().code(), absl::StatusCode::kDataLoss);
  fs::remove_all(dir);
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

TEST(SitePolicyTest, DecidesStatisticsStudiesByItsOwnRules) {
  ClientTask statistics = Train("", 3, true);
  statistics.kind = TaskKind::kStatistics;
  const absl::Time now = absl::Now();
  {
    absl::StatusOr<SitePolicyEnforcer> enforcer = SitePolicyEnforcer::Create(SitePolicy{}, "");
    ASSERT_TRUE(enforcer.ok());
    EXPECT_TRUE(enforcer->Check(statistics, Scope(), now).ok());  // allowed by default
  }
  SitePolicy closed;
  closed.allow_statistics = false;
  absl::StatusOr<SitePolicyEnforcer> enforcer = SitePolicyEnforcer::Create(closed, "");
  ASSERT_TRUE(enforcer.ok());
  EXPECT_THAT(Reason(enforcer->Check(statistics, Scope(), now)), HasSubstr("allow_statistics = false"));
  EXPECT_TRUE(enforcer->Check(Train(), Scope(), now).ok()) << "training is not statistics";
  SitePolicy cohort;
  cohort.min_cohort = 4;
  enforcer = SitePolicyEnforcer::Create(cohort, "");
  EXPECT_THAT(Reason(enforcer->Check(statistics, Scope(), now)), HasSubstr("min_cohort"));
  SitePolicy dp;
  dp.max_epsilon = 3;
  enforcer = SitePolicyEnforcer::Create(dp, "");
  EXPECT_THAT(Reason(enforcer->Check(statistics, Scope(), now)),
              HasSubstr("only with differential privacy"));
  SitePolicy bad;
  bad.min_count = 0;
  EXPECT_THAT(Reason(SitePolicyEnforcer::Create(bad, "").status()), HasSubstr("min_count must be >= 1"));
}

}  // namespace
}  // namespace samverka::client
