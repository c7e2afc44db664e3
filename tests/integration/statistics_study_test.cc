// Statistics studies in the real federation (issue 13): a standing
// coordinator and hospital daemons as separate processes over mutual TLS;
// an operator submits kind = "statistics" studies; the sites' vectors are
// summed with SecAgg+. The released statistics are checked against pandas
// on the pooled files (tests/integration/statistics_check.py).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "coordinator/state_store.h"
#include "nlohmann/json.hpp"
#include "tests/integration/standing_federation.h"

namespace samverka {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kExamples = std::string(SAMVERKA_SOURCE_DIR) + "/examples/";
// Distributed DP with noise multiplier 2.
const std::string kDp = "dp = \"distributed\"\ndp_noise_multiplier = 2\n";

bool HavePandas() {
  return RunCommand("/usr/bin/python3 -c 'import pandas, numpy'").exit_code == 0;
}

class StatisticsStudyTest : public StandingFederationFixture {
 protected:
  // The rows of `from` (a CSV file with a header) in [begin, end), with the
  // header, into `to`: the two halves of a cohort for two sites.
  static void WriteRows(const std::string& from, const fs::path& to, size_t begin, size_t end) {
    std::ifstream in(from);
    std::ofstream out(to);
    std::string line;
    std::getline(in, line);
    out << line << "\n";
    for (size_t i = 0; std::getline(in, line); ++i) {
      if (i >= begin && i < end) out << line << "\n";
    }
  }

  // A statistics study's manifest; `spec` as a spec file has it (its
  // [columns.X] become [statistics.columns.X]).
  void WriteStatisticsStudy(const std::string& file, const std::string& name,
                            const std::string& dataset, const std::string& spec,
                            const std::string& extra = "") {
    std::ofstream(dir_ / file) << "name = \"" << name << "\"\nkind = \"statistics\"\ndataset = \""
                               << dataset << "\"\ntrain_deadline_seconds = 60\n" << extra
                               << "[statistics]\n"
                               << std::regex_replace(spec, std::regex("\\[columns\\."),
                                                     "[statistics.columns.");
  }

  // Waits for the study to end and exports its statistics to `out`.
  void WaitAndExport(const std::string& id, const fs::path& out, const std::string& extra = "") {
    ASSERT_TRUE(coordinator_->WaitFor("study " + id + " released the statistics",
                                      std::chrono::seconds(180)))
        << coordinator_->output();
    CommandResult exported = Study("export " + id + " --out " + out.string() + extra);
    ASSERT_EQ(exported.exit_code, 0) << exported.output;
  }

  // statistics_check.py: the released JSON against pandas on `files`.
  std::string CheckWithPandas(const std::string& manifest, const fs::path& json,
                              const std::string& files) {
    CommandResult check = RunCommand(
        "/usr/bin/python3 " + std::string(SAMVERKA_SOURCE_DIR) +
        "/tests/integration/statistics_check.py " + (dir_ / manifest).string() + " " +
        json.string() + " " + files);
    EXPECT_EQ(check.exit_code, 0) << check.output;
    return check.output;
  }
};

TEST_F(StatisticsStudyTest, HospitalsAndSurvivalCohortsReleaseWhatPandasComputesOnThePooledFiles) {
  if (!HavePandas()) GTEST_SKIP() << "pandas is not installed (Debian package python3-pandas)";
  // The survival cohorts on three sites: GBSG, and Rotterdam in two halves.
  const std::string rotterdam = kExamples + "breast-cancer-survival/rotterdam.csv";
  WriteRows(rotterdam, dir_ / "rotterdam-1.csv", 0, 1500);
  WriteRows(rotterdam, dir_ / "rotterdam-2.csv", 1500, 100000);
  const std::string survival_files[] = {kExamples + "breast-cancer-survival/gbsg.csv",
                                        (dir_ / "rotterdam-1.csv").string(),
                                        (dir_ / "rotterdam-2.csv").string()};
  const std::string hospital_files[] = {kExamples + "healthcare/hospital-a.csv",
                                        kExamples + "healthcare/hospital-b.csv",
                                        kExamples + "healthcare/hospital-c.csv"};
  StartStandingCoordinator();
  const char* sites[] = {"site-a", "site-b", "site-c"};
  for (int i = 0; i < 3; ++i) {
    StartSiteWith(sites[i], "breast = \"csv:" + hospital_files[i] + ":malignant\"\n" +
                                "survival = \"csv:" + survival_files[i] + ":event\"\n");
  }
  ASSERT_TRUE(coordinator_->WaitForCount("joined (data sets", 3)) << coordinator_->output();

  // Bad manifests are refused at submit with one clear message, and
  // nothing is stored.
  struct Bad {
    std::string spec;
    std::string message;
  };
  std::string many;
  for (int i = 0; i < 300; ++i) many += (i ? ", \"" : "\"") + std::to_string(i) + "\"";
  for (const Bad& bad : std::vector<Bad>{
           {"[columns.agee]\nrange = [0, 100]\nbins = 10\n",
            "column 'agee' is not a column of data set 'survival' at any site (its columns: age,"},
           {"[columns.age]\nedges = [0, 50, 40]\n",
            "statistics.columns.age.edges must be finite and strictly increasing"},
           {"[columns.grade]\ncategories = [" + many + "]\n",
            "lists 300 categories; at most 256"},
           {"min_count = 0\n[columns.age]\nrange = [0, 100]\nbins = 10\n",
            "statistics.min_count must be at least 1"},
       }) {
    WriteStatisticsStudy("bad.toml", "bad", "survival", bad.spec);
    CommandResult r = Study("submit " + (dir_ / "bad.toml").string());
    EXPECT_NE(r.exit_code, 0) << bad.spec;
    EXPECT_THAT(r.output, HasSubstr(bad.message)) << r.output;
    EXPECT_EQ(r.lines().size(), 1u) << r.output;
  }

  WriteStatisticsStudy("hospitals.toml", "hospital-profile", "breast",
                       "min_count = 5\ngroup_by = \"malignant\"\n"
                       "[columns.radius_mean]\nrange = [5, 30]\nbins = 250\n"
                       "quantiles = [0.1, 0.5, 0.9]\n"
                       "[columns.area_mean]\nedges = [0, 500, 1000, 3000]\n"
                       "[columns.malignant]\ncategories = [\"0\", \"1\"]\n");
  WriteStatisticsStudy("survival.toml", "cohort-profile", "survival",
                       "min_count = 10\ngroup_by = \"event\"\ndecimals = 2\n"
                       "[columns.age]\nrange = [20, 100]\nbins = 160\nquantiles = [0.25, 0.5, 0.75]\n"
                       "[columns.nodes]\nrange = [0, 60]\nbins = 60\nquantiles = [0.5]\n"
                       "[columns.grade]\ncategories = [\"1\", \"2\", \"3\"]\n"
                       "[columns.event]\ncategories = [\"0\", \"1\"]\n");
  const std::string hospitals = Submit("hospitals.toml");
  const std::string survival = Submit("survival.toml");
  ASSERT_FALSE(hospitals.empty());
  ASSERT_FALSE(survival.empty());
  WaitAndExport(hospitals, dir_ / "hospitals.json");
  WaitAndExport(survival, dir_ / "survival.json");
  EXPECT_THAT(CheckWithPandas("hospitals.toml", dir_ / "hospitals.json",
                              hospital_files[0] + " " + hospital_files[1] + " " + hospital_files[2]),
              ::testing::ContainsRegex("quantiles=[1-9]"));
  EXPECT_THAT(CheckWithPandas("survival.toml", dir_ / "survival.json",
                              survival_files[0] + " " + survival_files[1] + " " + survival_files[2]),
              ::testing::ContainsRegex("quantiles=[1-9]"));

  // `study show` prints the table; `export --format csv` writes one row per
  // statistic.
  CommandResult show = Study("show " + survival);
  ASSERT_EQ(show.exit_code, 0) << show.output;
  EXPECT_THAT(show.output, HasSubstr("statistics (counts below min_count suppressed"));
  EXPECT_THAT(show.output, HasSubstr("sites that took part: site-a site-b site-c"));
  EXPECT_THAT(show.output, ::testing::ContainsRegex("age.*mean"));
  CommandResult csv = Study("export " + survival + " --out " + (dir_ / "survival.txt").string() +
                            " --format csv");
  ASSERT_EQ(csv.exit_code, 0) << csv.output;
  std::ifstream table(dir_ / "survival.txt");
  std::string header;
  std::getline(table, header);
  EXPECT_EQ(header, "group,column,statistic,value");

  // What the coordinator holds of the sites: masked vectors only (one per
  // site and study), never a plain update; each site's log says what left.
  absl::StatusOr<coordinator::AuditSummary> audit =
      coordinator::VerifyAuditLog((dir_ / "state").string());
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_EQ(audit->events["masked_input"], 6);
  EXPECT_EQ(audit->events.count("update"), 0u);
  EXPECT_EQ(audit->events["secure_aggregate"], 2);
  for (const auto& client : clients_) {
    EXPECT_EQ(client->Count("left this site only masked"), 2) << client->output();
  }
}

TEST_F(StatisticsStudyTest, SmallCountsAreSuppressedAndASiteBelowItsMinimumRefuses) {
  if (!HavePandas()) GTEST_SKIP() << "pandas is not installed (Debian package python3-pandas)";
  StartStandingCoordinator();
  // site-d holds 20 patients and releases nothing from fewer than 30.
  WriteRows(kExamples + "healthcare/holdout.csv", dir_ / "small.csv", 0, 20);
  const std::string files[] = {kExamples + "healthcare/hospital-a.csv",
                               kExamples + "healthcare/hospital-b.csv",
                               kExamples + "healthcare/hospital-c.csv",
                               (dir_ / "small.csv").string()};
  const char* sites[] = {"site-a", "site-b", "site-c", "site-d"};
  for (int i = 0; i < 4; ++i) {
    StartSiteWith(sites[i], "breast = \"csv:" + files[i] + ":malignant\"\n",
                  i == 3 ? "min_count = 30\n" : "");
  }
  ASSERT_TRUE(coordinator_->WaitForCount("joined (data sets", 4)) << coordinator_->output();
  // Fine bins and a high minimum: many bins hold 1..29 patients.
  WriteStatisticsStudy("fine.toml", "fine-bins", "breast",
                       "min_count = 30\n[columns.radius_mean]\nrange = [5, 30]\nbins = 50\n"
                       "quantiles = [0.5]\n");
  const std::string id = Submit("fine.toml");
  ASSERT_FALSE(id.empty());
  WaitAndExport(id, dir_ / "fine.json");
  // The checker asserts every count of 1..29 is null and every other exact,
  // over the three sites that contributed.
  EXPECT_THAT(CheckWithPandas("fine.toml", dir_ / "fine.json",
                              files[0] + " " + files[1] + " " + files[2]),
              ::testing::ContainsRegex("suppressed=[1-9]"));
  EXPECT_TRUE(clients_[3]->WaitFor("has 20 rows, fewer than min_count = 30")) << clients_[3]->output();
  CommandResult show = Study("show " + id);
  ASSERT_EQ(show.exit_code, 0) << show.output;
  EXPECT_THAT(show.output, HasSubstr("sites that took part: site-a site-b site-c\n"));
  EXPECT_THAT(show.output,
              HasSubstr("site-d               refused study " + id.substr(0, 16)))
      << show.output;
  EXPECT_THAT(show.output, HasSubstr("fewer rows than this site's min_count (30)"));
  EXPECT_THAT(show.output, Not(HasSubstr("small.csv")));
}

TEST_F(StatisticsStudyTest, WithDpTheSitesAddNoiseChargeTheirBudgetAndRefusePastIt) {
  StartStandingCoordinator();
  const std::string files[] = {kExamples + "healthcare/hospital-a.csv",
                               kExamples + "healthcare/hospital-b.csv",
                               kExamples + "healthcare/hospital-c.csv"};
  const char* sites[] = {"site-a", "site-b", "site-c"};
  for (int i = 0; i < 3; ++i) {
    // One release with multiplier 2 costs epsilon 2.17 at delta 1e-5, two
    // cost 3.19 (`samverka privacy --sampling-rate 1 --noise-multiplier 2
    // --rounds 1` and `--rounds 2`).
    StartSiteWith(sites[i], "breast = \"csv:" + files[i] + ":malignant\"\n", "max_epsilon = 3\n");
  }
  ASSERT_TRUE(coordinator_->WaitForCount("joined (data sets", 3)) << coordinator_->output();
  const std::string spec =
      "[columns.radius_mean]\nrange = [0, 30]\nbins = 30\n"
      "[columns.malignant]\ncategories = [\"0\", \"1\"]\n";
  // Without noise, these sites take no statistics study at all.
  WriteStatisticsStudy("plain.toml", "plain", "breast", spec);
  const std::string plain = Submit("plain.toml");
  ASSERT_TRUE(coordinator_->WaitFor("study " + plain + ": every site that names data set",
                                    std::chrono::seconds(120)))
      << coordinator_->output();
  WriteStatisticsStudy("dp.toml", "noisy", "breast", spec, kDp);
  const std::string noisy = Submit("dp.toml");
  WaitAndExport(noisy, dir_ / "noisy.json");
  nlohmann::json released;
  std::ifstream(dir_ / "noisy.json") >> released;
  ASSERT_TRUE(released.contains("dp")) << released.dump();
  EXPECT_NEAR(released["dp"]["epsilon"].get<double>(), 2.16572, 1e-4);
  // The noisy totals are near the exact ones (484 rows, radius_mean mean
  // 14.2301 over the three files; pandas gives the same): within 6 noise sd.
  const nlohmann::json& all = released["groups"][0];
  const double count_sd = released["dp"]["count_noise_sd"].get<double>();
  EXPECT_NEAR(all["rows"].get<double>(), 484, 6 * count_sd);
  const nlohmann::json& radius = all["columns"]["radius_mean"];
  EXPECT_NEAR(radius["mean"].get<double>(), 14.2301,
              6 * radius["sum_noise_sd"].get<double>() / (484 - 6 * count_sd) + 0.5);
  // And they are not the exact ones (295 benign, 189 malignant): all four
  // equal by chance has probability below 1e-5.
  const nlohmann::json& outcome = all["columns"]["malignant"]["counts"];
  EXPECT_FALSE(all["rows"] == 484 && outcome["0"] == 295 && outcome["1"] == 189 &&
               std::fabs(radius["mean"].get<double>() - 14.2301) < 1e-3)
      << released.dump();
  CommandResult show = Study("show " + noisy);
  EXPECT_THAT(show.output, HasSubstr("epsilon spent: 2.1657")) << show.output;
  for (const auto& client : clients_) {
    EXPECT_TRUE(client->WaitFor("so far is epsilon 2.166")) << client->output();
  }
  // A second release would pass each site's budget: every site refuses.
  WriteStatisticsStudy("dp2.toml", "noisy-again", "breast", spec, kDp);
  const std::string again = Submit("dp2.toml");
  ASSERT_TRUE(coordinator_->WaitFor("study " + again + ": every site that names data set",
                                    std::chrono::seconds(120)))
      << coordinator_->output();
  CommandResult refused = Study("show " + again);
  EXPECT_THAT(refused.output, HasSubstr("to epsilon 3.189"));
  EXPECT_THAT(refused.output, HasSubstr("over its budget max_epsilon = 3"));
  CommandResult refused_plain = Study("show " + plain);
  EXPECT_THAT(refused_plain.output, HasSubstr("this statistics study adds no noise"));
}

}  // namespace
}  // namespace samverka
