// tests/integration/standing_federation.h
// A standing federation for tests: a coordinator whose coordinator.toml
// names no study, hospital daemons with named data sets, and an operator
// who submits studies with `samverka study` (real processes over mutual TLS).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "tests/integration/federation_fixture.h"

namespace samverka {

class StandingFederationFixture : public FederationFixture {
 protected:
  // A standing coordinator: coordinator.toml names no study.
  int StartStandingCoordinator() {
    std::ofstream(dir_ / "coordinator.toml")
        << "federation_id = \"test-federation\"\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n"
        << "heartbeat_seconds = 1\nmax_poll_seconds = 2\n" << CoordinatorTlsSection();
    coordinator_ = std::make_unique<Process>(std::vector<std::string>{
        SAMVERKA_BIN, "coordinator", "--config", (dir_ / "coordinator.toml").string()});
    EXPECT_TRUE(coordinator_->WaitFor("with mutual TLS")) << coordinator_->output();
    port_ = ListeningPort(coordinator_->output());
    return port_;
  }

  // A hospital daemon with two data sets: "breast" and "cohort2" (the same
  // file under another name), and `extra` top-level keys.
  Process* StartSite(const std::string& site, const std::string& file, const std::string& extra = "") {
    const std::string csv = std::string(SAMVERKA_SOURCE_DIR) + "/examples/healthcare/" + file;
    return StartSiteWith(site, "breast = \"csv:" + csv + ":malignant\"\ncohort2 = \"csv:" + csv +
                                   ":malignant\"\n",
                         extra);
  }

  // A daemon whose [datasets] table is `datasets`.
  Process* StartSiteWith(const std::string& site, const std::string& datasets,
                         const std::string& extra = "") {
    const std::filesystem::path config = dir_ / (site + ".toml");
    std::ofstream(config) << "coordinator = \"127.0.0.1:" << port_ << "\"\n"
                          << "poll_seconds = 1\nmax_backoff_seconds = 1\n"
                          << "state_dir = \"state-" << site << "\"\n" << extra
                          << "[datasets]\n" << datasets
                          << "[tls]\nca_certificate = \"pki/ca/ca.crt\"\n"
                          << "certificate = \"pki/sites/" << site << "/" << site << ".crt\"\n"
                          << "private_key = \"pki/sites/" << site << "/" << site << ".key\"\n";
    clients_.push_back(std::make_unique<Process>(
        std::vector<std::string>{SAMVERKA_BIN, "client", "--config", config.string()}));
    return clients_.back().get();
  }

  void WriteStudy(const std::string& file, const std::string& name, const std::string& dataset,
                  const std::string& model, int rounds, const std::string& extra = "") {
    std::ofstream(dir_ / file) << "name = \"" << name << "\"\nkind = \"train\"\ndataset = \""
                               << dataset << "\"\nmodel = \"" << model
                               << "\"\ninput_shape = [30]\nnum_classes = 2\nrounds = " << rounds
                               << "\nclients_per_round = 3\nmin_clients = 3\nlr = 0.1\n"
                               << "train_deadline_seconds = 60\neval_deadline_seconds = 30\n"
                               << extra;
  }

  // `samverka study ARGS` with the certificate of `who` (an operator, or a
  // site to check it is refused).
  CommandResult Study(const std::string& args, const std::string& who = "operator") {
    const std::filesystem::path d = dir_ / "pki/sites" / who;
    return RunCommand(std::string(SAMVERKA_BIN) + " study " + args + " --coordinator 127.0.0.1:" +
                      std::to_string(port_) + " --ca " + (dir_ / "pki/ca/ca.crt").string() +
                      " --cert " + (d / (who + ".crt")).string() + " --key " +
                      (d / (who + ".key")).string());
  }

  // Submits `file` and returns the study's id.
  std::string Submit(const std::string& file) {
    CommandResult r = Study("submit " + (dir_ / file).string());
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::smatch m;
    const std::string out = r.output;
    EXPECT_TRUE(std::regex_search(out, m, std::regex("study ([0-9a-f]{16}) ")))
        << out;
    return m.size() > 1 ? m[1].str() : "";
  }

  int port_ = 0;
};

}  // namespace samverka
