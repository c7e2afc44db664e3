#include "simulation/simulation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "models/model.h"

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

TEST(SimulationConfigTest, UnknownKeyIsAnError) {
  absl::StatusOr<ConfigFile> file = ConfigFile::Parse("rounds = 3\nlearning_rate = 0.1\n", "sim.toml");
  ASSERT_TRUE(file.ok());
  SimulationOptions o;
  absl::Status s = ApplyConfig(*file, &o);
  EXPECT_THAT(std::string(s.message()), HasSubstr("unknown key 'learning_rate'"));
}

}  // namespace
}  // namespace samverka::simulation
