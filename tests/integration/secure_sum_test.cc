// The differencing attack on secure aggregation, against real processes: a
// coordinator must never learn two sums that include one site's update
// computed from the same model (docs/threat-model.md, "Differencing").
// Whether it restarted honestly or re-runs a round on purpose, the sites'
// consent ledgers allow one released sum per model and data set.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "tests/integration/federation_fixture.h"

namespace samverka {
namespace {

using ::testing::HasSubstr;

class SecureSumTest : public FederationFixture {
 protected:
  std::string SiteLogs() {
    std::string logs;
    for (auto& client : clients_) logs += "\n--- site ---\n" + client->output();
    return logs;
  }
  // Released sums per start model, read from the audit log by Python's
  // sqlite3 (an independent reader of the state database).
  std::map<std::string, int> ReleasedSumsPerModel(const std::string& event = "secure_aggregate") {
    CommandResult r = RunSqlitePython(
        dir_, dir_ / "state/state.db",
        "for (details,) in db.execute('SELECT details FROM audit WHERE event = ?', (sys.argv[2],)):\n"
        "    print(json.loads(details)['model_digest'])\n",
        event);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::map<std::string, int> count;
    for (const std::string& digest : r.lines()) ++count[digest];
    return count;
  }
};

TEST_F(SecureSumTest, ACoordinatorKilledRightAfterUnmaskingCompletesTheRoundOnRestart) {
  const int port = StartCoordinator(3, 3, 3);
  ASSERT_GT(port, 0);
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    StartClient(site, port, std::string("hospital-") + site[5] + ".csv");
  }
  // Killed the moment round 1's sum is unmasked (and stored, still under
  // the sites' consent masks).
  ASSERT_TRUE(coordinator_->WaitFor("round 1: the sum of 3 sites is unmasked but still sealed")) << coordinator_->output();
  coordinator_->Kill(SIGKILL);
  EXPECT_EQ(coordinator_->Wait(), 128 + SIGKILL);

  RestartCoordinatorOn(port);
  ASSERT_TRUE(coordinator_->WaitFor("completing the secure sum of round 1")) << coordinator_->output();
  ASSERT_EQ(coordinator_->Wait(), 0) << coordinator_->output() << SiteLogs();
  // Round 1 was completed, not run again: 3 rounds, each committed once.
  std::vector<coordinator::RoundRecord> rounds = Rounds();
  ASSERT_EQ(rounds.size(), 3u);
  for (const auto& r : rounds) EXPECT_TRUE(r.succeeded) << r.round << ": " << r.failure_reason;
  // One released sum per model, and no site was asked for a second one.
  std::map<std::string, int> released = ReleasedSumsPerModel();
  EXPECT_EQ(released.size(), 3u);
  for (const auto& [digest, n] : released) EXPECT_EQ(n, 1) << digest;
  for (const auto& [digest, n] : ReleasedSumsPerModel("secure_sum_sealed")) EXPECT_EQ(n, 1) << digest;
  for (auto& client : clients_) {
    EXPECT_THAT(client->output(), ::testing::Not(HasSubstr("refused")));
  }
  CommandResult audit = RunCommand(std::string(SAMVERKA_BIN) + " audit verify --state-dir " +
                                   (dir_ / "state").string());
  EXPECT_EQ(audit.exit_code, 0) << audit.output;
}

TEST_F(SecureSumTest, ACoordinatorThatRerunsARoundWithASubsetOfItsCohortIsRefused) {
  const int port = StartCoordinator(2, 4, 3, "wait_for_clients = 4\n");
  ASSERT_GT(port, 0);
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    StartClient(site, port, std::string("hospital-") + site[5] + ".csv");
  }
  StartClient("site-d", port, "hospital-c.csv");
  ASSERT_TRUE(coordinator_->WaitFor("round 1/2: 4 sites")) << coordinator_->output();
  coordinator_->Kill(SIGKILL);
  EXPECT_EQ(coordinator_->Wait(), 128 + SIGKILL);
  const std::map<std::string, int> before = ReleasedSumsPerModel();
  ASSERT_EQ(before.size(), 1u);
  const std::string first_model = before.begin()->first;

  // The adversary owns the coordinator's disk: it forgets round 1 (the
  // append-only audit log stays) and runs it again from the same model
  // with three of the four sites, to subtract the two sums.
  CommandResult forgot = RunSqlitePython(
      dir_, dir_ / "state/state.db",
      "for t in ('metrics', 'participants', 'checkpoints', 'rounds'):\n"
      "    db.execute('DELETE FROM ' + t + ' WHERE round >= 1')\ndb.commit()\n",
      "", /*writable=*/true);
  ASSERT_EQ(forgot.exit_code, 0) << forgot.output;
  WriteCoordinatorConfig(1, 3, 3, "");
  RestartCoordinatorOn(port);
  ASSERT_TRUE(coordinator_->WaitFor("from the checkpoint of round 0")) << coordinator_->output();
  // The rerun trained nothing: the coordinator exits with 78 and says so.
  ASSERT_EQ(coordinator_->Wait(), 78) << coordinator_->output();
  EXPECT_THAT(coordinator_->output(), HasSubstr("without one successful round"));

  // Every site of the second run refused before training: no second sum.
  EXPECT_THAT(coordinator_->output(), HasSubstr("round 1 failed"));
  EXPECT_THAT(coordinator_->output(), HasSubstr("would let the coordinator subtract"));
  const std::map<std::string, int> after = ReleasedSumsPerModel();
  EXPECT_EQ(after.at(first_model), 1);
  EXPECT_EQ(ReleasedSumsPerModel("secure_sum_sealed").at(first_model), 1);
  int refusals = 0;
  for (auto& client : clients_) {
    refusals += client->Count("refused the task: site policy: this site already released a secure sum");
  }
  EXPECT_EQ(refusals, 3);
}

}  // namespace
}  // namespace samverka
