#include "statistics/privacy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "statistics/site_statistics.h"
#include "statistics/summary.h"

namespace samverka::statistics {
namespace {

// Two numeric columns and one categorical, grouped by it.
StatisticsSpec Spec(double z) {
  StatisticsSpec spec;
  std::vector<double> edges;
  for (int k = 0; k <= 1000; ++k) edges.push_back(-50 + 0.1 * k);  // [-50, 50]
  spec.numeric.push_back({"x", edges, {}});
  spec.numeric.push_back({"y", {0, 10, 20}, {}});
  spec.categorical.push_back({"g", {"a", "b"}});
  spec.group_by = "g";
  spec.dp_noise_multiplier = z;
  return spec;
}

TEST(StatisticsPrivacyTest, TheSensitivityCountsWhatOneRowCanChange) {
  const StatisticsSpec spec = Spec(1.5);
  const StatisticsNoise noise = NoiseOf(spec);
  // Two groups touched, each: rows + 4 per numeric column + 1 categorical.
  EXPECT_DOUBLE_EQ(noise.l2_sensitivity, std::sqrt(2.0 * (1 + 4 * 2 + 1)));
  ASSERT_EQ(noise.stddev.size(), VectorLength(spec));
  const double count_sd = 1.5 * noise.l2_sensitivity;
  EXPECT_DOUBLE_EQ(noise.stddev[0], count_sd);  // rows
  EXPECT_DOUBLE_EQ(noise.stddev[1], count_sd);  // x count
  EXPECT_DOUBLE_EQ(noise.stddev[3], count_sd * kDpSumUnits);  // x sum
  EXPECT_DOUBLE_EQ(noise.stddev[4], count_sd * kDpSumUnits);  // x squares
  EXPECT_DOUBLE_EQ(noise.stddev[5], count_sd);  // x below
}

TEST(StatisticsPrivacyTest, SitesShareTheNoiseSoTheSumHasTheFullVariance) {
  const StatisticsSpec spec = Spec(2.0);
  const StatisticsNoise noise = NoiseOf(spec);
  const int sites = 4;
  // The sum of four sites' shares, on a zero vector: its counts should have
  // sd z Delta, its sums z Delta 2^16.
  std::vector<uint64_t> sum(VectorLength(spec), 0);
  for (int i = 0; i < sites; ++i) {
    std::vector<uint64_t> share(VectorLength(spec), 0);
    ASSERT_TRUE(AddSiteNoise(spec, sites, &share).ok());
    for (size_t k = 0; k < sum.size(); ++k) sum[k] += share[k];
  }
  double counts = 0, n = 0;
  for (size_t k = 0; k < sum.size(); ++k) {
    if (noise.stddev[k] != noise.stddev[0]) continue;
    const double v = static_cast<double>(static_cast<int64_t>(sum[k]));
    counts += v * v;
    n += 1;
  }
  ASSERT_GT(n, 2000);  // the bins of x, in three groups
  // The sample sd of ~3000 draws is within 5% of the truth with
  // probability far above 1 - 1e-6.
  EXPECT_NEAR(std::sqrt(counts / n), noise.stddev[0], 0.05 * noise.stddev[0]);
  EXPECT_FALSE(AddSiteNoise(Spec(0), 3, &sum).ok()) << "no noise without DP";
  std::vector<uint64_t> wrong(3, 0);
  EXPECT_FALSE(AddSiteNoise(spec, 3, &wrong).ok());
}

TEST(StatisticsPrivacyTest, UnderDpValuesAreClampedToTheEdgesInTheSums) {
  const std::string path = (std::filesystem::path(::testing::TempDir()) / "dp_clamp.csv").string();
  std::ofstream(path) << "x,y,g\n1000,5,a\n-3,25,b\n";
  absl::StatusOr<Table> table = ReadTable(path);
  ASSERT_TRUE(table.ok()) << table.status();
  const StatisticsSpec spec = Spec(1.0);
  absl::StatusOr<std::vector<uint64_t>> v = EncodeSiteStatistics(spec, *table);
  ASSERT_TRUE(v.ok()) << v.status();
  // Group "all": x sum is clamp(1000) + (-3) = 50 - 3 = 47, in units of 50 / 2^16.
  const double unit = 50.0 / kDpSumUnits;
  EXPECT_EQ(static_cast<int64_t>((*v)[3]), static_cast<int64_t>(std::round(50 / unit)) +
                                                static_cast<int64_t>(std::round(-3 / unit)));
  // One row changes the sum by at most 2^16 units.
  EXPECT_LE(std::llabs(static_cast<int64_t>(std::round(50 / unit))), kDpSumUnits);
  // Without DP the value is kept as it is.
  StatisticsSpec plain = Spec(0);
  v = EncodeSiteStatistics(plain, *table);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(static_cast<int64_t>((*v)[3]), (1000 - 3) * 10000);
  std::filesystem::remove(path);
}

TEST(StatisticsPrivacyTest, ANoisySumIsReleasedWithItsNoiseAndNoNegativeCounts) {
  const StatisticsSpec spec = Spec(1.0);
  std::vector<uint64_t> sum(VectorLength(spec), 0);
  ASSERT_TRUE(AddSiteNoise(spec, 1, &sum).ok());
  absl::StatusOr<nlohmann::json> out = Summarise(spec, sum, 3);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_TRUE(out->contains("dp"));
  EXPECT_DOUBLE_EQ((*out)["dp"]["count_noise_sd"].get<double>(), NoiseOf(spec).l2_sensitivity);
  EXPECT_EQ((*out)["dp"]["mechanism"], "distributed discrete Gaussian");
  for (const auto& group : (*out)["groups"]) {
    if (group.contains("suppressed")) continue;
    for (const auto& count : group["columns"]["x"]["histogram"]["counts"]) {
      if (!count.is_null()) EXPECT_GE(count.get<int64_t>(), 0);
    }
  }
  absl::StatusOr<double> epsilon = Epsilon(spec, 1e-5);
  ASSERT_TRUE(epsilon.ok());
  // One Gaussian release with multiplier 1 at delta 1e-5 (RDP, Balle et
  // al. 2020 conversion; `samverka privacy --rounds 1 --sampling-rate 1
  // --noise-multiplier 1` prints the same).
  EXPECT_GT(*epsilon, 3.0);
  EXPECT_LT(*epsilon, 6.0);
}

}  // namespace
}  // namespace samverka::statistics
