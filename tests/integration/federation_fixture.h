// tests/integration/federation_fixture.h
// A real federation for tests: the PKI made by `samverka pki`, a coordinator
// and client daemons as separate processes over mutual TLS on loopback.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "coordinator/state_store.h"
#include "tests/integration/federation_files.h"
#include "tests/integration/process.h"
#include "tests/integration/run_command.h"

namespace samverka {

class FederationFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("samverka_fed_");
    Pki("init --dir pki --federation test-federation");
    Pki("issue --dir pki --name coordinator --role coordinator --san 127.0.0.1");
    for (const char* site : {"site-a", "site-b", "site-c", "site-d", "site-e"}) {
      Pki(std::string("issue --dir pki --name ") + site);
    }
    Pki("issue --dir pki --name operator --role operator");
  }
  void TearDown() override {
    clients_.clear();
    coordinator_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  void Pki(const std::string& args) {
    CommandResult r = RunPki(dir_, args);
    ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.output;
  }

  // Writes coordinator.toml (and the state dir).
  void WriteCoordinatorConfig(int rounds, int per_round, int min_clients, const std::string& extra,
                              const std::string& model = "logreg") {
    std::ofstream(dir_ / "coordinator.toml")
        << "federation_id = \"test-federation\"\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n"
        << "rounds = " << rounds << "\nmodel = \"" << model << "\"\ninput_shape = [30]\nnum_classes = 2\n"
        << "clients_per_round = " << per_round << "\nmin_clients = " << min_clients << "\n"
        << "heartbeat_seconds = 1\nmax_poll_seconds = 2\ntrain_deadline_seconds = 60\n"
        << "eval_deadline_seconds = 30\nlr = 0.1\n" << extra << CoordinatorTlsSection();
    std::filesystem::create_directories(dir_ / "state");
  }

  // Writes coordinator.toml and starts the coordinator; returns its port.
  int StartCoordinator(int rounds, int per_round, int min_clients, const std::string& extra = "") {
    WriteCoordinatorConfig(rounds, per_round, min_clients, extra);
    coordinator_ = std::make_unique<Process>(std::vector<std::string>{
        SAMVERKA_BIN, "coordinator", "--config", (dir_ / "coordinator.toml").string()});
    EXPECT_TRUE(coordinator_->WaitFor("with mutual TLS")) << coordinator_->output();
    return ListeningPort(coordinator_->output());
  }

  // Starts the coordinator again with its config, on `port` (the sites
  // find it again by themselves).
  void RestartCoordinatorOn(int port) {
    std::string config;
    {
      std::ifstream in(dir_ / "coordinator.toml");
      config.assign(std::istreambuf_iterator<char>(in), {});
    }
    config = std::regex_replace(config, std::regex("127.0.0.1:0"),
                                "127.0.0.1:" + std::to_string(port));
    std::ofstream(dir_ / "coordinator.toml") << config;
    coordinator_ = std::make_unique<Process>(std::vector<std::string>{
        SAMVERKA_BIN, "coordinator", "--config", (dir_ / "coordinator.toml").string()});
  }

  // Starts the daemon of `site` (its certificate from pki/sites/SITE).
  Process* StartClient(const std::string& site, int port, const std::string& data_file,
                       const std::string& extra = "") {
    const std::filesystem::path config =
        WriteClientConfig(dir_, site, "127.0.0.1:" + std::to_string(port), data_file, extra);
    clients_.push_back(std::make_unique<Process>(
        std::vector<std::string>{SAMVERKA_BIN, "client", "--config", config.string()}));
    return clients_.back().get();
  }

  // `samverka status` with the operator's certificate.
  CommandResult OperatorStatus(int port) {
    return RunCommand(std::string(SAMVERKA_BIN) + " status --coordinator 127.0.0.1:" +
                      std::to_string(port) + " --ca " + (dir_ / "pki/ca/ca.crt").string() +
                      " --cert " + (dir_ / "pki/sites/operator/operator.crt").string() + " --key " +
                      (dir_ / "pki/sites/operator/operator.key").string());
  }

  std::vector<coordinator::RoundRecord> Rounds() {
    auto store = coordinator::StateStore::Open((dir_ / "state").string(), "test-federation");
    EXPECT_TRUE(store.ok()) << store.status();
    auto rounds = (*store)->Rounds(1000);
    EXPECT_TRUE(rounds.ok());
    std::vector<coordinator::RoundRecord> out(rounds->rbegin(), rounds->rend());
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Process> coordinator_;
  std::vector<std::unique_ptr<Process>> clients_;
};

}  // namespace samverka
