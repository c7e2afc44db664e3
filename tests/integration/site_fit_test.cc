// Sites whose data cannot serve the model never cost a round, and are told
// why: a CSV with the wrong number of features is refused when the site
// registers (its message names the file and the shapes), a site holding one
// class only trains the federation's model, and a federation that trained
// nothing exits non-zero. Real processes; waits are on their output.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "tests/integration/federation_fixture.h"

namespace samverka {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// Copies examples/healthcare/SOURCE to OUT, passing each line (the header
// first) through `edit`; a line `edit` makes empty is dropped.
void DeriveCsv(const std::string& source, const fs::path& out,
               const std::function<std::string(const std::string&)>& edit) {
  std::ifstream in(std::string(SAMVERKA_SOURCE_DIR) + "/examples/healthcare/" + source);
  std::ofstream sink(out);
  std::string line;
  while (std::getline(in, line)) {
    const std::string edited = edit(line);
    if (!edited.empty()) sink << edited << "\n";
  }
}

class SiteFitTest : public FederationFixture {};

TEST_F(SiteFitTest, WrongFeatureCountIsRefusedAtRegistrationAndCostsNoRound) {
  // 29 features for input_shape = [30]: the first column dropped.
  const fs::path bad = dir_ / "hospital-29-features.csv";
  DeriveCsv("hospital-c.csv", bad, [](const std::string& line) {
    return line.substr(line.find(',') + 1);
  });
  // Every online site is in every cohort (clients_per_round 3): were the
  // bad site registered, it would be selected.
  const int port = StartCoordinator(3, 3, 2, "secure_aggregation = false\nwait_for_clients = 2\n");
  ASSERT_GT(port, 0);
  Process* c = StartClient("site-c", port, bad.string());
  // Refused at registration: the site stops with a message naming the file
  // and the shapes, and the coordinator says which site and why.
  // Exit code 78: the unit does not restart it (RestartPreventExitStatus).
  EXPECT_EQ(c->Wait(std::chrono::seconds(120)), 78) << c->output();
  EXPECT_THAT(c->output(), AllOf(HasSubstr(bad.string()), HasSubstr("29 features per sample"),
                                 HasSubstr("input_shape [30]")));
  ASSERT_TRUE(coordinator_->WaitFor("refused site site-c")) << coordinator_->output();
  EXPECT_THAT(coordinator_->output(), AllOf(HasSubstr("29 features per sample"),
                                            HasSubstr("input_shape [30]")));

  StartClient("site-a", port, "hospital-a.csv");
  StartClient("site-b", port, "hospital-b.csv");
  ASSERT_EQ(coordinator_->Wait(), 0) << coordinator_->output();
  EXPECT_THAT(coordinator_->output(), Not(HasSubstr("(failed)")));
  EXPECT_THAT(coordinator_->output(), Not(HasSubstr("site-c did not run")));
  const std::vector<coordinator::RoundRecord> rounds = Rounds();
  ASSERT_EQ(rounds.size(), 3u);
  for (const auto& r : rounds) {
    EXPECT_TRUE(r.succeeded) << r.failure_reason;
    EXPECT_EQ(r.participants.size(), 2u);
  }
}

TEST_F(SiteFitTest, SiteHoldingOneClassTrains) {
  // Benign patients only (label 0): the classes come from the coordinator's
  // num_classes = 2, not from this site's data.
  const fs::path benign = dir_ / "benign-only.csv";
  DeriveCsv("hospital-b.csv", benign, [](const std::string& line) {
    return line.ends_with(",1") ? std::string() : line;
  });
  const int port = StartCoordinator(2, 3, 3, "secure_aggregation = false\n");
  ASSERT_GT(port, 0);
  StartClient("site-a", port, "hospital-a.csv");
  StartClient("site-b", port, "hospital-c.csv");
  Process* c = StartClient("site-c", port, benign.string());
  ASSERT_EQ(coordinator_->Wait(), 0) << coordinator_->output() << c->output();
  const std::vector<coordinator::RoundRecord> rounds = Rounds();
  ASSERT_EQ(rounds.size(), 2u);
  for (const auto& r : rounds) {
    EXPECT_TRUE(r.succeeded) << r.failure_reason;
    EXPECT_EQ(r.participants.size(), 3u);
  }
  c->Kill(SIGTERM);  // a site serves until stopped
  EXPECT_EQ(c->Wait(), 0) << c->output();
  EXPECT_EQ(c->Count("sent a model update"), 2) << c->output();
}

TEST_F(SiteFitTest, FederationWithoutOneSuccessfulRoundExitsNonZero) {
  // Every site refuses every task (its policy wants secure aggregation).
  const int port = StartCoordinator(2, 2, 2, "secure_aggregation = false\n");
  ASSERT_GT(port, 0);
  StartClient("site-a", port, "hospital-a.csv", "require_secure_aggregation = true\n");
  StartClient("site-b", port, "hospital-b.csv", "require_secure_aggregation = true\n");
  EXPECT_EQ(coordinator_->Wait(), 78) << coordinator_->output();
  // Failed rounds back off instead of spinning, and the end says why.
  EXPECT_THAT(coordinator_->output(),
              AllOf(HasSubstr("1 round(s) failed in a row; the next round starts in 1.0 s"),
                    HasSubstr("finished its 2 rounds without one successful round")));
  // The sites keep serving (a standing federation runs study after study)
  // until their IT team stops them, which ends them cleanly.
  for (auto& client : clients_) {
    client->Kill(SIGTERM);
    EXPECT_EQ(client->Wait(), 0) << client->output();
    EXPECT_THAT(client->output(), HasSubstr("stopped"));
  }
}

TEST_F(SiteFitTest, ASiteThatDoesNotTrainSitsOutRounds) {
  // Cohorts of every site; site-c refuses every task (its policy allows
  // only cnn). It sits out round 2 after refusing round 1, and rounds 4 and
  // 5 after refusing round 3; the others train in every round.
  const int port = StartCoordinator(4, 3, 1, "secure_aggregation = false\nwait_for_clients = 3\n");
  ASSERT_GT(port, 0);
  StartClient("site-a", port, "hospital-a.csv");
  StartClient("site-b", port, "hospital-b.csv");
  StartClient("site-c", port, "hospital-c.csv", "allowed_models = [\"cnn\"]\n");
  ASSERT_EQ(coordinator_->Wait(), 0) << coordinator_->output();
  const std::string log = coordinator_->output();
  EXPECT_THAT(log, AllOf(HasSubstr("site-c did not run task round-1-train"),
                         HasSubstr("site-c did not run task round-3-train"),
                         HasSubstr("it sits out until round 2 unless"),
                         HasSubstr("it sits out until round 5 unless")));
  EXPECT_THAT(log, Not(HasSubstr("site-c did not run task round-2-train")));
  EXPECT_THAT(log, Not(HasSubstr("site-c did not run task round-4-train")));
  for (const auto& r : Rounds()) {
    EXPECT_TRUE(r.succeeded) << r.failure_reason;
    EXPECT_THAT(r.participants, ::testing::UnorderedElementsAre("site-a", "site-b"));
  }
}

}  // namespace
}  // namespace samverka
