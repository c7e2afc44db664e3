#include "simulation/simulation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <random>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "models/model.h"
#include "security/dp/accountant.h"
#include "simulation/secure_aggregation.h"

namespace samverka::simulation {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class SimulationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("samverka_sim_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // Three Gaussian blobs, 4 features, label column "kind" in the middle.
    std::ofstream csv(dir_ / "blobs.csv");
    csv << "a,b,kind,c,d\n";
    std::mt19937_64 rng(11);
    std::normal_distribution<double> noise(0, 0.6);
    for (int i = 0; i < 600; ++i) {
      const int c = i % 3;
      csv << (c == 0 ? 2 : 0) + noise(rng) << "," << (c == 1 ? 2 : 0) + noise(rng) << ","
          << "class" << c << "," << (c == 2 ? 2 : 0) + noise(rng) << "," << noise(rng) << "\n";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  SimulationOptions Options(const std::string& run) const {
    SimulationOptions o;
    o.dataset = "csv:" + (dir_ / "blobs.csv").string() + ":kind";
    o.model = "logreg";
    o.clients = 6;
    o.clients_per_round = 3;
    o.rounds = 4;
    o.partition = "dirichlet:1.0";
    o.train.learning_rate = 0.1;
    o.train.batch_size = 16;
    o.seed = 3;
    o.workers = 1;
    o.out = (dir_ / run).string();
    return o;
  }

  static std::vector<nlohmann::json> ReadMetrics(const fs::path& out) {
    std::vector<nlohmann::json> rows;
    std::ifstream in(out / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
    return rows;
  }

  fs::path dir_;
};

TEST_F(SimulationTest, WritesMetricsModelAndConfigAndLearns) {
  std::vector<RoundReport> seen;
  absl::StatusOr<RoundReport> last =
      RunSimulation(Options("run"), [&](const RoundReport& r) { seen.push_back(r); });
  ASSERT_TRUE(last.ok()) << last.status();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen.back().round, 4);
  EXPECT_GT(last->test_accuracy, 0.9) << "separable blobs";
  EXPECT_LT(seen.back().test_loss, seen.front().test_loss);

  const fs::path out = dir_ / "run";
  std::vector<nlohmann::json> rows = ReadMetrics(out);
  ASSERT_EQ(rows.size(), 4u);
  for (const char* key : {"round", "clients", "test_accuracy", "test_loss", "train_loss",
                          "seconds", "bytes_up", "bytes_down"}) {
    EXPECT_TRUE(rows[0].contains(key)) << key;
  }
  EXPECT_EQ(rows[3]["round"], 4);
  EXPECT_EQ(rows[0]["clients"], 3);
  // 3 clients each download the model (15 parameters, with its layout) and,
  // secure aggregation being on by default, upload a masked vector of 15 + 1
  // uint32 (the weight rides along).
  EXPECT_GT(rows[0]["bytes_down"].get<int64_t>(), 3 * 15 * 4);
  EXPECT_EQ(rows[0]["bytes_up"], 3 * (15 + 1) * 4);
  EXPECT_DOUBLE_EQ(rows[3]["test_accuracy"].get<double>(), last->test_accuracy);

  std::ifstream csv(out / "metrics.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_THAT(header, HasSubstr("round,clients"));

  // The exported model reloads and scores what the run reported.
  absl::StatusOr<std::unique_ptr<models::Model>> model =
      models::CreateModel({(out / "model.pt").string(), {4}, 3}, 0);
  ASSERT_TRUE(model.ok()) << model.status();

  // config.toml reads back into the same options.
  absl::StatusOr<ConfigFile> file = ConfigFile::Load((out / "config.toml").string());
  ASSERT_TRUE(file.ok()) << file.status();
  SimulationOptions reread;
  ASSERT_TRUE(ApplyConfig(*file, &reread).ok());
  EXPECT_EQ(ToToml(reread), ToToml(Options("run")));
}

TEST_F(SimulationTest, SameSeedOneWorkerGivesSameNumbers) {
  ASSERT_TRUE(RunSimulation(Options("a")).ok());
  ASSERT_TRUE(RunSimulation(Options("b")).ok());
  std::vector<nlohmann::json> a = ReadMetrics(dir_ / "a");
  std::vector<nlohmann::json> b = ReadMetrics(dir_ / "b");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    for (const char* key : {"test_accuracy", "test_loss", "train_loss", "bytes_up"}) {
      EXPECT_EQ(a[i][key], b[i][key]) << "round " << i + 1 << " " << key;
    }
  }
  SimulationOptions other = Options("c");
  other.seed = 4;
  ASSERT_TRUE(RunSimulation(other).ok());
  EXPECT_NE(ReadMetrics(dir_ / "c")[0]["train_loss"], a[0]["train_loss"]);
}

TEST_F(SimulationTest, TwoWorkersTrainTheSameCohorts) {
  SimulationOptions options = Options("two");
  options.workers = 2;
  absl::StatusOr<RoundReport> last = RunSimulation(options);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_GT(last->test_accuracy, 0.9);
}

TEST_F(SimulationTest, SecureAggregationMatchesPlainFedAvg) {
  SimulationOptions plain = Options("plain");
  plain.clients = 8;
  plain.clients_per_round = 5;
  plain.secure_aggregation = false;
  SimulationOptions secure = plain;
  secure.out = (dir_ / "secure").string();
  secure.secure_aggregation = true;
  ASSERT_TRUE(RunSimulation(plain).ok());
  absl::StatusOr<RoundReport> last = RunSimulation(secure);
  ASSERT_TRUE(last.ok()) << last.status();
  std::vector<nlohmann::json> a = ReadMetrics(dir_ / "plain");
  std::vector<nlohmann::json> b = ReadMetrics(dir_ / "secure");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i]["clients"], 5) << "every member contributed to the masked sum";
    // The same cohorts and local training; only quantisation differs.
    EXPECT_NEAR(b[i]["test_loss"].get<double>(), a[i]["test_loss"].get<double>(), 1e-4) << i;
    EXPECT_NEAR(b[i]["train_loss"].get<double>(), a[i]["train_loss"].get<double>(), 1e-3) << i;
  }
  // The coordinator received masked vectors (uint32, one extra coordinate
  // for the weight), not the float updates.
  EXPECT_NE(b[0]["bytes_up"], a[0]["bytes_up"]);
}

TEST_F(SimulationTest, BadOptionsAreRejectedBeforeAnyWork) {
  SimulationOptions o = Options("bad");
  o.clients_per_round = 7;
  EXPECT_THAT(std::string(RunSimulation(o).status().message()),
              HasSubstr("clients_per_round = 7 is larger than clients = 6"));
  o = Options("bad");
  o.partition = "dirichlet:-1";
  EXPECT_EQ(RunSimulation(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Options("bad");
  o.model = "transformer";
  EXPECT_EQ(RunSimulation(o).status().code(), absl::StatusCode::kNotFound);
  o = Options("bad");
  o.dataset = "csv:" + (dir_ / "blobs.csv").string() + ":label";
  EXPECT_THAT(std::string(RunSimulation(o).status().message()), HasSubstr("kind"));
}

TEST_F(SimulationTest, BadStrategyOrAttackIsRejectedBeforeAnyWork) {
  SimulationOptions o = Options("bad");
  o.strategy.name = "median";
  o.secure_aggregation = true;
  absl::Status s = RunSimulation(o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("strategy median needs each client's update"));
  o = Options("bad");
  o.secure_aggregation = false;
  o.strategy.name = "krum";  // f = 1 needs more than 4 updates; the cohort is 3
  EXPECT_THAT(std::string(RunSimulation(o).status().message()), HasSubstr("2f + 2 = 4"));
  o = Options("bad");
  o.strategy.name = "trimmed-mean";
  o.strategy.trim_fraction = 0.5;
  EXPECT_THAT(std::string(RunSimulation(o).status().message()), HasSubstr("trim_fraction"));
  o = Options("bad");
  o.strategy.name = "fedprox";
  EXPECT_THAT(std::string(RunSimulation(o).status().message()), HasSubstr("proximal_mu"));
  o = Options("bad");
  o.malicious_fraction = 1.5;
  EXPECT_THAT(std::string(RunSimulation(o).status().message()), HasSubstr("malicious_fraction"));
  o = Options("bad");
  o.attack = "backdoor";
  EXPECT_THAT(std::string(RunSimulation(o).status().message()), HasSubstr("unknown attack"));
  EXPECT_FALSE(fs::exists(dir_ / "bad"));
}

// Two of six clients send their update scaled by -10. FedAvg follows them
// away; the coordinate-wise median of each round's 5 updates does not.
TEST_F(SimulationTest, MedianResistsScaledUpdatesThatBreakFedAvg) {
  SimulationOptions fedavg = Options("fedavg");
  fedavg.partition = "iid";
  fedavg.rounds = 8;
  fedavg.clients_per_round = 5;
  fedavg.malicious_fraction = 1.0 / 3;
  fedavg.attack = "scale:-10";
  fedavg.secure_aggregation = false;  // the median needs individual updates
  SimulationOptions median = fedavg;
  median.out = (dir_ / "median").string();
  median.strategy.name = "median";
  absl::StatusOr<RoundReport> attacked = RunSimulation(fedavg);
  absl::StatusOr<RoundReport> robust = RunSimulation(median);
  ASSERT_TRUE(attacked.ok()) << attacked.status();
  ASSERT_TRUE(robust.ok()) << robust.status();
  EXPECT_GT(robust->test_accuracy, 0.9);
  EXPECT_LT(attacked->test_accuracy, 0.5);
}

TEST(SimulationConfigTest, StrategyAndAttackKeysReadBack) {
  absl::StatusOr<ConfigFile> file = ConfigFile::Parse(
      "strategy = \"fedyogi\"\nserver_learning_rate = 0.03\ntau = 0.01\nbeta1 = 0.8\n"
      "proximal_mu = 0.1\nmalicious_fraction = 0.2\nattack = \"scale:5\"\n",
      "sim.toml");
  ASSERT_TRUE(file.ok());
  SimulationOptions o;
  ASSERT_TRUE(ApplyConfig(*file, &o).ok());
  EXPECT_EQ(o.strategy.name, "fedyogi");
  EXPECT_EQ(o.strategy.server_learning_rate, 0.03);
  EXPECT_EQ(o.strategy.tau, 0.01);
  EXPECT_EQ(o.strategy.beta1, 0.8);
  EXPECT_EQ(o.train.proximal_mu, 0.1);
  EXPECT_EQ(o.malicious_fraction, 0.2);
  EXPECT_EQ(o.attack, "scale:5");
  absl::StatusOr<ConfigFile> again = ConfigFile::Parse(ToToml(o), "config.toml");
  ASSERT_TRUE(again.ok());
  SimulationOptions reread;
  ASSERT_TRUE(ApplyConfig(*again, &reread).ok());
  EXPECT_EQ(ToToml(reread), ToToml(o));
  EXPECT_EQ(reread.strategy.server_learning_rate, 0.03);
  // Unset, the server learning rate stays unset (the strategy's default).
  EXPECT_FALSE(SimulationOptions{}.strategy.server_learning_rate.has_value());
  EXPECT_THAT(ToToml(SimulationOptions{}), ::testing::Not(HasSubstr("server_learning_rate")));
}


// --- Differential privacy (DP-FedAvg) ---

TEST_F(SimulationTest, CentralDpReportsEpsilonAndStillLearns) {
  SimulationOptions o = Options("dp");
  o.dp = "central";
  o.rounds = 8;  // enough rounds that the noisy model is clearly better than chance
  o.dp_noise_multiplier = 0.05;  // little noise: the blobs must still be learnt
  o.dp_clip_norm = 2.0;
  std::vector<RoundReport> seen;
  absl::StatusOr<RoundReport> last = RunSimulation(o, [&](const RoundReport& r) { seen.push_back(r); });
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_GT(last->test_accuracy, 0.8);
  // Epsilon grows every round and after 8 rounds is the accountant's value
  // for q = 3 / 6, z = 0.05, 8 steps.
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i].epsilon, seen[i - 1].epsilon);
  absl::StatusOr<security::dp::PrivacySpent> expected =
      security::dp::ComputeEpsilon(0.5, 0.05, 8, 1e-5);
  ASSERT_TRUE(expected.ok());
  EXPECT_NEAR(last->epsilon, expected->epsilon, 1e-9 * expected->epsilon);
  std::vector<nlohmann::json> rows = ReadMetrics(dir_ / "dp");
  ASSERT_EQ(rows.size(), 8u);
  EXPECT_NEAR(rows.back()["epsilon"].get<double>(), last->epsilon, 1e-9 * last->epsilon);
  EXPECT_EQ(rows.back()["dp_clip_norm"].get<double>(), 2.0);
  // Without DP both columns are empty (null).
  ASSERT_TRUE(RunSimulation(Options("plain")).ok());
  EXPECT_TRUE(ReadMetrics(dir_ / "plain").back()["epsilon"].is_null());
}

TEST_F(SimulationTest, DpNoiseDrownsTheSignalWhenLarge) {
  // z = 50 with 3 clients a round: per-coordinate noise of 50 * C / 3 on
  // the averaged update, which shows the noise is really added (central)
  // and really survives secure aggregation (distributed). Accuracy alone is
  // no proof: a model pushed around by noise still scores above 0.8 on
  // these blobs now and then (CI saw 0.87). The parameters are: without
  // noise, the average of updates clipped to C moves the model by at most
  // C a round, so at most rounds * C in all. With the noise each of the 15
  // coordinates moves by about sqrt(rounds) * 50 * C / 3 = 3.3, a distance
  // near 13; below 10 * rounds * C = 4 has a chance under 1e-6 (chi-square
  // with 15 degrees of freedom below 1.44).
  absl::StatusOr<std::unique_ptr<models::Model>> initial =
      models::CreateModel({"logreg", {4}, 3}, Options("x").seed);
  ASSERT_TRUE(initial.ok()) << initial.status();
  const std::vector<float> start = (*initial)->GetParameters().values;
  for (const char* mode : {"central", "distributed"}) {
    SimulationOptions o = Options(std::string("loud_") + mode);
    o.dp = mode;
    o.secure_aggregation = std::string(mode) == "distributed";
    o.dp_noise_multiplier = 50;
    o.dp_clip_norm = 0.1;
    o.secagg_clip_range = 32;  // room for the noised sum: >= 0.1 + 10 * 50 * 0.1 / 3
    absl::StatusOr<RoundReport> last = RunSimulation(o);
    ASSERT_TRUE(last.ok()) << mode << ": " << last.status();
    EXPECT_TRUE(last->succeeded) << mode;
    EXPECT_EQ(last->clients, 3) << mode << ": every client contributed";
    absl::StatusOr<std::unique_ptr<models::Model>> final_model =
        models::CreateModel({(dir_ / (std::string("loud_") + mode) / "model.pt").string(), {4}, 3},
                            0);
    ASSERT_TRUE(final_model.ok()) << mode << ": " << final_model.status();
    const std::vector<float> end = (*final_model)->GetParameters().values;
    ASSERT_EQ(end.size(), start.size());
    double squared = 0;
    for (size_t i = 0; i < end.size(); ++i) squared += (end[i] - start[i]) * (end[i] - start[i]);
    EXPECT_GT(std::sqrt(squared), 10 * o.rounds * o.dp_clip_norm)
        << mode << ": the model moved no further than clipped updates alone could move it";
  }
}

TEST_F(SimulationTest, DistributedDpUnderSecureAggregationLearns) {
  SimulationOptions o = Options("distributed");
  o.clients = 8;
  o.clients_per_round = 5;
  o.secure_aggregation = true;
  o.dp = "distributed";
  o.rounds = 8;  // enough rounds that the noisy model is clearly better than chance
  o.dp_noise_multiplier = 0.05;
  o.dp_clip_norm = 2.0;
  absl::StatusOr<RoundReport> last = RunSimulation(o);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->clients, 5);
  EXPECT_GT(last->test_accuracy, 0.8);
  EXPECT_NEAR(last->epsilon, security::dp::ComputeEpsilon(5.0 / 8, 0.05, 8, 1e-5)->epsilon,
              1e-9 * last->epsilon);
}

TEST_F(SimulationTest, BadDpOptionsAreRejectedBeforeAnyWork) {
  const std::pair<std::function<void(SimulationOptions&)>, std::string> cases[] = {
      {[](SimulationOptions& o) { o.dp_noise_multiplier = -1; }, "dp_noise_multiplier"},
      {[](SimulationOptions& o) { o.dp_delta = 1; }, "dp_delta"},
      {[](SimulationOptions& o) { o.dp_clip_norm = 0; }, "dp_clip_norm"},
      {[](SimulationOptions& o) { o.dp_target_quantile = 2; }, "dp_target_quantile"},
      {[](SimulationOptions& o) { o.dp = "local"; }, "dp = \"local\""},
      {[](SimulationOptions& o) { o.dp = "distributed"; o.secure_aggregation = false; }, "secure_aggregation"},
      {[](SimulationOptions& o) {
         o.dp = "distributed";
         o.secure_aggregation = true;
         o.dp_noise_multiplier = 50;
       },
       "secagg_clip_range"},
  };
  for (const auto& [mutate, fragment] : cases) {
    SimulationOptions o = Options("bad_dp");
    if (o.dp == "off") o.dp = "central";
    mutate(o);
    absl::Status s = RunSimulation(o).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << fragment;
    EXPECT_THAT(std::string(s.message()), HasSubstr(fragment));
    EXPECT_FALSE(fs::exists(dir_ / "bad_dp")) << "nothing ran for " << fragment;
  }
}

TEST(SimulatedSecureAggregationTest, DistributedNoiseSharesAddUpToTheTarget) {
  // Five clients send all-zero updates, each with a discrete Gaussian share
  // of standard deviation 0.1 (in update units). The unmasked sum must then
  // carry noise of variance 5 * 0.1^2 = 0.05 per coordinate (plus
  // quantisation noise of order step^2 ~ 1e-14): the shares survive
  // encoding, masking and decoding at the right scale. 5 standard errors of
  // the variance estimate: 5 * 0.05 * sqrt(2 / 20000) = 0.0025.
  // The pid keeps concurrent test runs (other build trees) apart.
  const fs::path dir = fs::temp_directory_path() /
                       ("samverka_sim_distributed_noise_" + std::to_string(getpid()));
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) names.push_back("site-" + std::to_string(i));
  absl::StatusOr<std::unique_ptr<SimulatedSecureAggregation>> secure =
      SimulatedSecureAggregation::Create(names, dir.string(), security::secagg::ThreatModel{}, 8.0,
                                         /*seed=*/1);
  ASSERT_TRUE(secure.ok()) << secure.status();
  const size_t d = 20000;
  DistributedNoise noise;
  noise.stddev = 0.1;
  noise.coordinates = d;
  absl::StatusOr<SecureAggregate> sum = (*secure)->RunRound(
      1, std::string(64, 'a'), d, {0, 1, 2, 3, 4}, 1.0, 1,
      [&](int, int) -> absl::StatusOr<ClientContribution> {
        return ClientContribution{std::vector<float>(d, 0.0f), 1.0, 0.0};
      },
      noise);
  fs::remove_all(dir);
  ASSERT_TRUE(sum.ok()) << sum.status();
  ASSERT_EQ(sum->contributors.size(), 5u);
  EXPECT_DOUBLE_EQ(sum->total_weight, 5.0);
  double mean = 0, second = 0;
  for (double v : sum->weighted_sum) {
    mean += v;
    second += v * v;
  }
  mean /= d;
  second /= d;
  EXPECT_NEAR(mean, 0, 5 * std::sqrt(0.05 / d));
  EXPECT_NEAR(second, 0.05, 0.0025);
}

// --- end of differential privacy ---

TEST(SimulationConfigTest, UnknownKeyIsAnError) {
  absl::StatusOr<ConfigFile> file = ConfigFile::Parse("rounds = 3\nlearning_rate = 0.1\n", "sim.toml");
  ASSERT_TRUE(file.ok());
  SimulationOptions o;
  absl::Status s = ApplyConfig(*file, &o);
  EXPECT_THAT(std::string(s.message()), HasSubstr("unknown key 'learning_rate'"));
}

// --- Tasks beyond classification (docs/tasks.md) ---

TEST_F(SimulationTest, RegressionReportsMetricsInTheTargetsOwnUnits) {
  // y = 50 x0 - 20 x1 + 1000 + N(0, 5^2): a linear model explains ~99%.
  std::ofstream csv(dir_ / "reg.csv");
  csv << "x0,y,x1\n";
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(0, 1);
  for (int i = 0; i < 600; ++i) {
    const double x0 = normal(rng), x1 = normal(rng);
    csv << x0 << "," << 50 * x0 - 20 * x1 + 1000 + 5 * normal(rng) << "," << x1 << "\n";
  }
  csv.close();
  SimulationOptions o = Options("reg");
  o.dataset = "csv:" + (dir_ / "reg.csv").string() + ":y";
  o.task = "regression";
  o.partition = "iid";
  o.rounds = 8;
  o.train.learning_rate = 0.05;
  absl::StatusOr<RoundReport> last = RunSimulation(o);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_GT(last->test_metrics.at("r2"), 0.98);
  EXPECT_LT(last->test_metrics.at("rmse"), 8);  // noise 5, in the target's units
  const std::vector<nlohmann::json> rows = ReadMetrics(o.out);
  ASSERT_EQ(rows.size(), 8u);
  for (const char* column : {"test_mse", "test_rmse", "test_mae", "test_r2"}) {
    EXPECT_TRUE(rows.back()[column].is_number()) << column;
  }
  EXPECT_TRUE(rows.back()["test_accuracy"].is_null());
  // Huber trains too (more slowly: its gradient is bounded by delta).
  o.huber_delta = 1.0;
  o.rounds = 25;
  o.out = (dir_ / "huber").string();
  last = RunSimulation(o);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_GT(last->test_metrics.at("r2"), 0.95);
}

TEST_F(SimulationTest, SurvivalOnRotterdamReachesAUsefulConcordance) {
  SimulationOptions o = Options("cox");
  o.dataset = std::string("csv:") + SAMVERKA_SOURCE_DIR +
              "/examples/breast-cancer-survival/rotterdam.csv:time,event";
  o.task = "survival";
  o.partition = "iid";
  o.clients = 3;
  o.clients_per_round = 3;
  o.rounds = 10;
  o.train.batch_size = 256;
  o.train.learning_rate = 0.05;
  absl::StatusOr<RoundReport> last = RunSimulation(o);
  ASSERT_TRUE(last.ok()) << last.status();
  // Published Cox models on these factors reach C ~0.68-0.70.
  EXPECT_GT(last->test_metrics.at("c_index"), 0.65);
  std::printf("Rotterdam, 3 simulated sites, 10 rounds: test C-index %.4f\n",
              last->test_metrics.at("c_index"));
  const std::vector<nlohmann::json> rows = ReadMetrics(o.out);
  EXPECT_TRUE(rows.back()["test_c_index"].is_number());
  // The export is a linear Cox model: one log risk per patient.
  absl::StatusOr<std::unique_ptr<models::Model>> reloaded = models::CreateModel(
      {(fs::path(o.out) / "model.pt").string(), {9}, 1}, 0, {.type = models::TaskType::kSurvival});
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
}

TEST_F(SimulationTest, TaskOptionsAreCheckedBeforeAnyWork) {
  SimulationOptions o = Options("bad");
  o.task = "segmentation";
  EXPECT_THAT(o.Validate().message(), HasSubstr("unknown task 'segmentation'"));
  o.task = "survival";
  o.malicious_fraction = 0.5;
  o.attack = "label-flip";
  EXPECT_THAT(o.Validate().message(), HasSubstr("label-flip"));
  o = Options("bad");
  o.huber_delta = 1;
  EXPECT_THAT(o.Validate().message(), HasSubstr("huber_delta is for task regression"));
  o = Options("bad");
  o.class_weights = "1,x";
  EXPECT_THAT(o.Validate().message(), HasSubstr("'x' is not a number"));
  // A survival task on a data set without time and event columns.
  o = Options("bad");
  o.task = "survival";
  absl::Status run = RunSimulation(o).status();
  EXPECT_THAT(run.message(), HasSubstr("task survival takes two columns"));
  // Class weights of the wrong count.
  o = Options("bad");
  o.class_weights = "1,2";
  EXPECT_THAT(RunSimulation(o).status().message(), HasSubstr("2 class_weights for 3 classes"));
}

TEST(SimulationConfigTest, TaskKeysReadBack) {
  absl::StatusOr<ConfigFile> file = ConfigFile::Parse(
      "task = \"regression\"\nhuber_delta = 1.5\n", "sim.toml");
  ASSERT_TRUE(file.ok());
  SimulationOptions o;
  ASSERT_TRUE(ApplyConfig(*file, &o).ok());
  EXPECT_EQ(o.task, "regression");
  EXPECT_EQ(o.huber_delta, 1.5);
  o.class_weights = "";
  absl::StatusOr<ConfigFile> again = ConfigFile::Parse(ToToml(o), "config.toml");
  ASSERT_TRUE(again.ok());
  SimulationOptions reread;
  ASSERT_TRUE(ApplyConfig(*again, &reread).ok());
  EXPECT_EQ(ToToml(reread), ToToml(o));
}

}  // namespace
}  // namespace samverka::simulation
