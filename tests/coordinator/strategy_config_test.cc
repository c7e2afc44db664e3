// The strategy keys of coordinator.toml: read, validated at start-up.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "coordinator/server.h"

namespace samverka::coordinator {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class StrategyConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("samverka_strategy_config_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // LoadCoordinatorConfig checks that the TLS files exist, not their contents.
    for (const char* name : {"ca.pem", "cert.pem", "key.pem", "crl.pem"}) {
      std::ofstream(dir_ / name) << "placeholder\n";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  absl::StatusOr<CoordinatorConfig> Load(const std::string& extra) {
    const fs::path path = dir_ / "coordinator.toml";
    std::ofstream(path) << "federation_id = \"f\"\nstate_dir = \"state\"\ninput_shape = [4]\n"
                           "num_classes = 3\nclients_per_round = 5\n"
                           "tls.ca_certificate = \"ca.pem\"\ntls.certificate = \"cert.pem\"\n"
                           "tls.private_key = \"key.pem\"\ntls.crl = \"crl.pem\"\n"
                        << (extra.find("secure_aggregation") == std::string::npos
                                ? "secure_aggregation = false\n"
                                : "")
                        << extra;
    return LoadCoordinatorConfig(path.string());
  }

  fs::path dir_;
};

TEST_F(StrategyConfigTest, DefaultIsFedAvg) {
  absl::StatusOr<CoordinatorConfig> config = Load("");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->coordinator.strategy.name, "fedavg");
}

TEST_F(StrategyConfigTest, ReadsStrategyAndParameters) {
  absl::StatusOr<CoordinatorConfig> config =
      Load("strategy = \"fedadam\"\nserver_learning_rate = 0.05\nbeta2 = 0.9\ntau = 0.01\n"
           "proximal_mu = 0.01\n");
  ASSERT_TRUE(config.ok()) << config.status();
  const StrategyOptions& s = config->coordinator.strategy;
  EXPECT_EQ(s.name, "fedadam");
  EXPECT_EQ(s.effective_server_learning_rate(), 0.05);
  EXPECT_EQ(s.beta2, 0.9);
  EXPECT_EQ(s.tau, 0.01);
  EXPECT_EQ(config->coordinator.round.train.proximal_mu, 0.01);
}

TEST_F(StrategyConfigTest, BadStrategyIsRefusedAtStartUpNamingFileAndParameter) {
  absl::Status s = Load("strategy = \"fedsgd\"\n").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("coordinator.toml: unknown strategy 'fedsgd'"));
  s = Load("strategy = \"trimmed-mean\"\ntrim_fraction = 0.6\n").status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("trim_fraction = 0.6"));
  // min_clients (1 by default) bounds the updates a round can close with.
  s = Load("strategy = \"krum\"\nkrum_byzantine = 1\n").status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("but a round may have only 1"));
  EXPECT_TRUE(Load("strategy = \"krum\"\nkrum_byzantine = 1\nmin_clients = 5\n").ok());
  // A robust strategy needs individual updates: refused with secure
  // aggregation (the default) at start-up.
  absl::Status secure =
      Load("strategy = \"median\"\nmin_clients = 3\nsecure_aggregation = true\n").status();
  EXPECT_EQ(secure.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(secure.message()), HasSubstr("median needs each client's update"));
  s = Load("strategy = \"fedprox\"\n").status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("fedprox needs proximal_mu > 0"));
  s = Load("tau = \"small\"\n").status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("tau"));
}

}  // namespace
}  // namespace samverka::coordinator
