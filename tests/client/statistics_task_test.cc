#include "client/statistics_task.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "statistics/site_statistics.h"

namespace samverka::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class StatisticsTaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::path(::testing::TempDir()) / "statistics_task_site.csv").string();
    std::ofstream out(path_);
    out << "age,grade\n";
    for (int i = 0; i < 12; ++i) out << 40 + i << "," << 1 + i % 3 << "\n";
    spec_.numeric.push_back({"age", {0, 50, 100}, {0.5}});
    spec_.categorical.push_back({"grade", {"1", "2", "3"}});
    spec_.min_count = 5;
  }
  void TearDown() override { std::filesystem::remove(path_); }

  std::string path_;
  statistics::StatisticsSpec spec_;
};

TEST_F(StatisticsTaskTest, ASiteWithEnoughRowsComputesTheStudysVector) {
  std::string reason;
  absl::StatusOr<SiteStatistics> computed = ComputeSiteStatistics(spec_, path_, SitePolicy{}, &reason);
  ASSERT_TRUE(computed.ok()) << computed.status();
  EXPECT_EQ(computed->rows, 12);
  EXPECT_EQ(computed->vector.size(), statistics::VectorLength(spec_));
  EXPECT_EQ(computed->vector[0], 12u);  // the rows of group "all" come first
  EXPECT_TRUE(reason.empty());
}

TEST_F(StatisticsTaskTest, ASiteBelowItsMinimumRefusesAndTellsTheCoordinatorOnlyTheRule) {
  SitePolicy policy;
  policy.min_count = 20;
  spec_.min_count = 20;
  std::string reason;
  absl::StatusOr<SiteStatistics> computed = ComputeSiteStatistics(spec_, path_, policy, &reason);
  EXPECT_EQ(computed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(computed.status().message(), HasSubstr("has 12 rows, fewer than min_count = 20"));
  EXPECT_THAT(reason, HasSubstr("fewer rows than this site's min_count (20)"));
  EXPECT_THAT(reason, Not(HasSubstr("12")));
  EXPECT_THAT(reason, Not(HasSubstr(path_)));
}

TEST_F(StatisticsTaskTest, AStudyThatWouldReleaseSmallerCountsThanTheSiteAllowsIsRefused) {
  SitePolicy policy;
  policy.min_count = 10;  // the study suppresses only counts below 5
  std::string reason;
  absl::StatusOr<SiteStatistics> computed = ComputeSiteStatistics(spec_, path_, policy, &reason);
  EXPECT_EQ(computed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(reason, HasSubstr("suppresses only counts below 5; this site releases no count below 10"));
}

TEST_F(StatisticsTaskTest, AColumnTheFileLacksIsNamedInTheSitesLogOnly) {
  spec_.numeric.push_back({"height", {0, 1, 2}, {}});
  std::string reason;
  absl::StatusOr<SiteStatistics> computed = ComputeSiteStatistics(spec_, path_, SitePolicy{}, &reason);
  EXPECT_EQ(computed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(computed.status().message(), HasSubstr("height"));
  EXPECT_THAT(reason, Not(HasSubstr("height")));
  EXPECT_THAT(reason, HasSubstr("its log says why"));
}

}  // namespace
}  // namespace samverka::client
