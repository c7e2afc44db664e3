#include "coordinator/reported_numbers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace samverka::coordinator {
namespace {

using ::testing::HasSubstr;

TEST(ReportedNumbersTest, RegistrationsAreBoundedByTheFederation) {
  EXPECT_TRUE(CheckRegisteredSamples(0, 0, 100).ok());
  EXPECT_TRUE(CheckRegisteredSamples(100, 5, 100).ok());
  absl::Status huge = CheckRegisteredSamples(std::numeric_limits<int64_t>::max(), 5, 100);
  EXPECT_EQ(huge.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(huge.message(), HasSubstr("max_samples_per_site"));
  EXPECT_THAT(CheckRegisteredSamples(1, -1, 100).message(), HasSubstr("-1 evaluation samples"));
}

TEST(ReportedNumbersTest, AResultClaimsNoMoreSamplesThanTheSiteRegistered) {
  EXPECT_TRUE(CheckResultSamples(TaskKind::kTrain, false, 10, 10).ok());
  EXPECT_TRUE(CheckResultSamples(TaskKind::kEvaluate, false, 1, 3).ok());
  EXPECT_THAT(CheckResultSamples(TaskKind::kTrain, false, 11, 10).message(),
              HasSubstr("claims 11 training samples; the site registered 10"));
  EXPECT_FALSE(CheckResultSamples(TaskKind::kTrain, false, 0, 10).ok());
  EXPECT_FALSE(CheckResultSamples(TaskKind::kEvaluate, false, -4, 10).ok());
  // A masked input's weight is inside the vector: its header says 0.
  EXPECT_TRUE(CheckResultSamples(TaskKind::kTrain, true, 0, 10).ok());
  EXPECT_FALSE(CheckResultSamples(TaskKind::kTrain, true, 10, 10).ok());
}

TEST(ReportedNumbersTest, MetricsOutOfTheirRangeRefuseTheResult) {
  std::vector<std::string> dropped;
  for (const auto& [name, value] :
       {std::pair{"accuracy", 999999.99}, std::pair{"auc", -49.99}, std::pair{"loss", -0.5},
        std::pair{"accuracy", std::nan("")}, std::pair{"loss", HUGE_VAL}}) {
    std::map<std::string, double> metrics = {{"loss", 0.3}, {"accuracy", 0.5}};
    metrics[name] = value;
    absl::Status s = CheckResultMetrics(TaskKind::kEvaluate, &metrics, &dropped);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << name << " = " << value;
    EXPECT_THAT(s.message(), HasSubstr(std::string("metric ") + name)) << s.message();
  }
  std::map<std::string, double> train = {{"train_loss", 0.7}, {"dp_within_clip", 0.5}};
  EXPECT_THAT(CheckResultMetrics(TaskKind::kTrain, &train, &dropped).message(),
              HasSubstr("0 or 1"));
  EXPECT_TRUE(dropped.empty());
}

TEST(ReportedNumbersTest, HonestMetricsPassAndUnknownOnesAreDroppedWithTheirNameEscaped) {
  std::vector<std::string> dropped;
  std::map<std::string, double> eval = {
      {"loss", 0.3}, {"accuracy", 1.0}, {"auc", 0.0}, {"f1\nround 999", 0.5}};
  ASSERT_TRUE(CheckResultMetrics(TaskKind::kEvaluate, &eval, &dropped).ok());
  EXPECT_EQ(eval.size(), 3u);
  EXPECT_FALSE(eval.contains("f1\nround 999"));
  EXPECT_EQ(dropped, std::vector<std::string>{"f1\\nround 999"});
  // Per kind: an evaluation's "accuracy" is no training metric.
  std::map<std::string, double> train = {{"train_loss", 0.0}, {"dp_within_clip", 1.0}, {"accuracy", 0.9}};
  dropped.clear();
  ASSERT_TRUE(CheckResultMetrics(TaskKind::kTrain, &train, &dropped).ok());
  EXPECT_EQ(dropped, std::vector<std::string>{"accuracy"});
}

}  // namespace
}  // namespace samverka::coordinator
