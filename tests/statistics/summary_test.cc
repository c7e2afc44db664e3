#include "statistics/summary.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "statistics/site_statistics.h"

namespace samverka::statistics {
namespace {

// One site holding x = 1, 2, 3, 4, 5, 15 and one missing value; the values
// expected below are worked out by hand.
class SummaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::path(::testing::TempDir()) / "summary_site.csv").string();
    std::ofstream(path_) << "x\n1\n2\n3\n4\n5\n15\nNA\n";
    spec_.numeric.push_back({"x", {0, 10, 20}, {0.5}});
    spec_.min_count = 2;
  }
  void TearDown() override { std::filesystem::remove(path_); }

  nlohmann::json Released() {
    absl::StatusOr<Table> table = ReadTable(path_);
    EXPECT_TRUE(table.ok()) << table.status();
    absl::StatusOr<std::vector<uint64_t>> v = EncodeSiteStatistics(spec_, *table);
    EXPECT_TRUE(v.ok()) << v.status();
    absl::StatusOr<nlohmann::json> out = Summarise(spec_, *v, 3);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : nlohmann::json();
  }

  std::string path_;
  StatisticsSpec spec_;
};

TEST_F(SummaryTest, CountsMeansVariancesAndHistogramsAreTheExactOnes) {
  const nlohmann::json x = Released()["groups"][0]["columns"]["x"];
  EXPECT_EQ(x["count"], 6);
  EXPECT_EQ(x["missing"], nullptr) << "1 missing value is below min_count 2";
  EXPECT_NEAR(x["mean"].get<double>(), 5.0, x["mean_error_bound"].get<double>());
  // Squared deviations 16 + 9 + 4 + 1 + 0 + 100 = 130, over n - 1 = 5.
  EXPECT_NEAR(x["variance"].get<double>(), 26.0, x["variance_error_bound"].get<double>());
  EXPECT_EQ(x["histogram"]["counts"][0], 5);
  EXPECT_EQ(x["histogram"]["counts"][1], nullptr) << "the one value 15 is suppressed";
  EXPECT_EQ(x["histogram"]["below"], 0);
  EXPECT_FALSE(x.contains("sum_noise_sd"));
}

TEST_F(SummaryTest, AQuantileComesWithABoundThatHoldsTheExactValue) {
  const nlohmann::json q = Released()["groups"][0]["columns"]["x"]["quantiles"][0];
  // pandas' median of 1, 2, 3, 4, 5, 15: halfway between 3 and 4.
  ASSERT_FALSE(q["value"].is_null());
  EXPECT_LE(std::fabs(q["value"].get<double>() - 3.5), q["error_bound"].get<double>());
  EXPECT_LE(q["error_bound"].get<double>(), 10.0) << "no wider than the bin it rests on";
}

TEST_F(SummaryTest, AGroupSmallerThanMinCountIsReleasedOnlyAsSuppressed) {
  spec_.min_count = 10;
  const nlohmann::json group = Released()["groups"][0];
  EXPECT_EQ(group["suppressed"], true);
  EXPECT_FALSE(group.contains("columns"));
  absl::StatusOr<nlohmann::json> wrong = Summarise(spec_, {1, 2, 3}, 3);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace samverka::statistics
