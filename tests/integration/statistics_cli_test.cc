// `samverka statistics` as a researcher runs it: the demo hospitals and the
// two breast-cancer cohorts, each file one site, summed with SecAgg+; the
// released statistics are checked against pandas on the pooled files
// (tests/integration/statistics_check.py), within the stated bounds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/integration/run_command.h"

namespace samverka {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kExamples = std::string(SAMVERKA_SOURCE_DIR) + "/examples/";
const std::string kHospitals = kExamples + "healthcare/hospital-a.csv " + kExamples +
                               "healthcare/hospital-b.csv " + kExamples + "healthcare/hospital-c.csv";
const std::string kCohorts = kExamples + "breast-cancer-survival/gbsg.csv " + kExamples +
                             "breast-cancer-survival/rotterdam.csv";

bool HavePandas() { return RunCommand("/usr/bin/python3 -c 'import pandas'").exit_code == 0; }

// Runs the statistics of `spec` over `sites` and checks them with pandas;
// returns the checker's summary line.
std::string RunAndCheck(const fs::path& dir, const std::string& spec, const std::string& sites) {
  std::ofstream(dir / "spec.toml") << spec;
  CommandResult r = RunCommand(std::string(SAMVERKA_BIN) + " statistics --spec " +
                               (dir / "spec.toml").string() + " --format json --out " +
                               (dir / "out" / "stats.json").string() + " " + sites);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // What left each site, in its own words.
  EXPECT_THAT(r.output, HasSubstr("sends one masked vector of")) << r.output;
  CommandResult check = RunCommand("/usr/bin/python3 " + std::string(SAMVERKA_SOURCE_DIR) +
                                   "/tests/integration/statistics_check.py " +
                                   (dir / "spec.toml").string() + " " +
                                   (dir / "out" / "stats.json").string() + " " + sites);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  return check.output;
}

TEST(StatisticsCliTest, TheDemoHospitalsMatchPandasOnThePooledFiles) {
  if (!HavePandas()) GTEST_SKIP() << "pandas is not installed (Debian package python3-pandas)";
  const fs::path dir = FreshTestDir("samverka_statistics_");
  const std::string out = RunAndCheck(dir,
      "min_count = 5\ngroup_by = \"malignant\"\n"
      "[columns.radius_mean]\nrange = [5, 30]\nbins = 250\nquantiles = [0.1, 0.25, 0.5, 0.75, 0.9]\n"
      "[columns.texture_mean]\nrange = [5, 45]\nbins = 40\nquantiles = [0.5]\n"
      "[columns.area_mean]\nedges = [0, 500, 1000, 3000]\n"
      "[columns.malignant]\ncategories = [\"0\", \"1\"]\n",
      kHospitals);
  EXPECT_THAT(out, ::testing::ContainsRegex("quantiles=[1-9]")) << "some quantile was released";
  fs::remove_all(dir);
}

TEST(StatisticsCliTest, TheTwoSurvivalCohortsMatchPandasPerOutcome) {
  if (!HavePandas()) GTEST_SKIP() << "pandas is not installed (Debian package python3-pandas)";
  const fs::path dir = FreshTestDir("samverka_statistics_");
  const std::string out = RunAndCheck(dir,
      "min_count = 10\ngroup_by = \"event\"\ndecimals = 2\n"
      "[columns.age]\nrange = [20, 100]\nbins = 160\nquantiles = [0.25, 0.5, 0.75]\n"
      "[columns.nodes]\nrange = [0, 60]\nbins = 60\nquantiles = [0.5, 0.9]\n"
      "[columns.pgr]\nrange = [0, 2000]\nbins = 200\n"
      "[columns.grade]\ncategories = [\"1\", \"2\", \"3\"]\n"
      "[columns.event]\ncategories = [\"0\", \"1\"]\n",
      kCohorts);
  EXPECT_THAT(out, ::testing::ContainsRegex("quantiles=[1-9]")) << out;
  fs::remove_all(dir);
}

TEST(StatisticsCliTest, CountsBelowMinCountAreSuppressed) {
  if (!HavePandas()) GTEST_SKIP() << "pandas is not installed (Debian package python3-pandas)";
  const fs::path dir = FreshTestDir("samverka_statistics_");
  // Fine bins and a high minimum: many bins hold 1..29 patients. The checker
  // asserts each of them is null and every other count exact.
  const std::string out = RunAndCheck(dir,
      "min_count = 30\n[columns.radius_mean]\nrange = [5, 30]\nbins = 50\nquantiles = [0.5]\n",
      kHospitals);
  EXPECT_THAT(out, ::testing::ContainsRegex("suppressed=[1-9]")) << out;
  fs::remove_all(dir);
}

TEST(StatisticsCliTest, OneFileDealtAmongVirtualSitesMatchesPandasOnThatFile) {
  if (!HavePandas()) GTEST_SKIP() << "pandas is not installed (Debian package python3-pandas)";
  const fs::path dir = FreshTestDir("samverka_statistics_");
  const std::string wdbc = kExamples + "breast-cancer-wisconsin/wdbc.csv";
  std::ofstream(dir / "spec.toml")
      << "group_by = \"malignant\"\n[columns.radius_mean]\nrange = [5, 30]\nbins = 100\n"
      << "quantiles = [0.5]\n[columns.malignant]\ncategories = [\"0\", \"1\"]\n";
  CommandResult r = RunCommand(std::string(SAMVERKA_BIN) + " statistics --spec " +
                               (dir / "spec.toml").string() + " --clients 4 --seed 3 " +
                               "--format json --out " + (dir / "stats.json").string() + " " + wdbc);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("site client-4: 142 rows"));  // 569 rows dealt among 4
  CommandResult check = RunCommand("/usr/bin/python3 " + std::string(SAMVERKA_SOURCE_DIR) +
                                   "/tests/integration/statistics_check.py --sites=4 " +
                                   (dir / "spec.toml").string() + " " +
                                   (dir / "stats.json").string() + " " + wdbc);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  // With DP each virtual site adds its share of the noise, and epsilon is
  // reported (one Gaussian release, multiplier 2: 2.16572 at delta 1e-5).
  r = RunCommand(std::string(SAMVERKA_BIN) + " statistics --spec " + (dir / "spec.toml").string() +
                 " --clients 4 --dp-noise-multiplier 2 " + wdbc);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("with its share of the noise"));
  EXPECT_THAT(r.output, HasSubstr("epsilon 2.16572 (delta 1e-05)"));
  fs::remove_all(dir);
}

TEST(StatisticsCliTest, BadSpecsAndFilesGetOneClearError) {
  const fs::path dir = FreshTestDir("samverka_statistics_");
  struct Case {
    std::string spec;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"[columns.height]\nrange = [0, 1]\nbins = 2\n",
            "no column 'height'; its columns are radius_mean"},
           {"[columns.radius_mean]\nedges = [1, 3, 2]\n", "columns.radius_mean.edges must be finite and strictly increasing"},
           {"min_count = 0\n[columns.radius_mean]\nrange = [0, 1]\nbins = 2\n", "min_count must be at least 1"},
           {"[columns.radius_mean]\nrange = [0, 1]\nbin = 2\n", "columns.radius_mean.bins must be in [1, 10000]"},
           {"[columns.radius_mean]\nrange = [0, 1]\nbins = 2\nquantile = [0.5]\n", "unknown key 'columns.radius_mean.quantile'"},
           {"group_by = \"sex\"\n[columns.radius_mean]\nrange = [0, 1]\nbins = 2\n", "group_by names 'sex'"},
           {"[columns.malignant]\ncategories = [" + [] {
              std::string list;
              for (int i = 0; i < 300; ++i) list += (i ? ", \"" : "\"") + std::to_string(i) + "\"";
              return list;
            }() + "]\n", "lists 300 categories; at most 256"},
       }) {
    std::ofstream(dir / "spec.toml") << c.spec;
    CommandResult r = RunCommand(std::string(SAMVERKA_BIN) + " statistics --spec " +
                                 (dir / "spec.toml").string() + " " + kHospitals);
    EXPECT_EQ(r.exit_code, 1) << c.spec << r.output;
    EXPECT_THAT(r.output, HasSubstr(c.message)) << c.spec;
    EXPECT_EQ(r.lines().size(), 1u) << r.output;
  }
  std::ofstream(dir / "bad.csv") << "radius_mean,malignant\n12.5,1\nlarge,0\n";
  std::ofstream(dir / "spec.toml") << "[columns.radius_mean]\nrange = [0, 40]\nbins = 4\n";
  CommandResult r = RunCommand(std::string(SAMVERKA_BIN) + " statistics --spec " +
                               (dir / "spec.toml").string() + " " + (dir / "bad.csv").string() +
                               " " + kHospitals);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("bad.csv:3: column 'radius_mean' holds 'large'"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace samverka
