// A real federation: a coordinator and client daemons as separate processes
// over mutual TLS on loopback, with the federation's PKI made by
// `samverka pki`. Waits are on the processes' output, never on sleeps.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "coordinator/state_store.h"
#include "tests/integration/federation_files.h"
#include "tests/integration/federation_fixture.h"
#include "tests/integration/process.h"
#include "tests/integration/run_command.h"

namespace samverka {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// The files a process has mapped (/proc/PID/maps).
std::string MappedFiles(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class FederationTest : public FederationFixture {};

TEST_F(FederationTest, ThreeHospitalsTrainTogether) {
  const int port = StartCoordinator(3, 3, 3, "test_dataset = \"csv:" SAMVERKA_SOURCE_DIR
                                             "/examples/healthcare/holdout.csv:malignant\"\n");
  ASSERT_GT(port, 0);
  // The coordinator (samverka) never loads LibTorch: it built the model and
  // evaluated the test set in samverka-torch children.
  const std::string maps = MappedFiles(coordinator_->pid());
  ASSERT_THAT(maps, HasSubstr("libgrpc"));
  EXPECT_THAT(maps, Not(HasSubstr("libtorch")));
  EXPECT_THAT(maps, Not(HasSubstr("libc10")));
  EXPECT_THAT(coordinator_->output(), HasSubstr("the starting model has test_accuracy"));
  Process* a = StartClient("site-a", port, "hospital-a.csv");
  StartClient("site-b", port, "hospital-b.csv");
  StartClient("site-c", port, "hospital-c.csv");
  // `samverka client` replaced itself (same pid) with samverka-torch.
  ASSERT_TRUE(a->WaitFor("sent a masked update of")) << a->output();
  EXPECT_EQ(fs::read_symlink("/proc/" + std::to_string(a->pid()) + "/exe"),
            fs::canonical(SAMVERKA_TORCH_BIN));
  EXPECT_THAT(MappedFiles(a->pid()), HasSubstr("libtorch"));
  ASSERT_EQ(coordinator_->Wait(), 0) << coordinator_->output();
  EXPECT_THAT(coordinator_->output(), HasSubstr("round 3/3: 3 sites"));
  // The sites serve until stopped (a standing federation runs study after
  // study); SIGTERM ends them cleanly.
  for (auto& client : clients_) {
    client->Kill(SIGTERM);
    EXPECT_EQ(client->Wait(), 0) << client->output();
  }
  // The site's log says what left the building, and never the data. With
  // secure aggregation (the default) only masked vectors left it.
  EXPECT_EQ(a->Count("sent a masked update of"), 3) << a->output();
  EXPECT_EQ(a->Count("sent a model update"), 0) << a->output();
  EXPECT_THAT(a->output(), Not(HasSubstr("17.99")));  // a feature value of the data set
  EXPECT_EQ(coordinator_->Count("unmasked the sum of 3 sites"), 3) << coordinator_->output();

  std::vector<coordinator::RoundRecord> rounds = Rounds();
  ASSERT_EQ(rounds.size(), 3u);
  for (const auto& r : rounds) {
    EXPECT_TRUE(r.succeeded) << r.failure_reason;
    EXPECT_EQ(r.participants.size(), 3u);
    EXPECT_TRUE(r.metrics.contains("eval_accuracy"));
    EXPECT_TRUE(r.metrics.contains("eval_auc"));
    EXPECT_TRUE(r.metrics.contains("test_accuracy"));
    EXPECT_TRUE(r.metrics.contains("test_auc"));
  }
  CommandResult audit = RunCommand(std::string(SAMVERKA_BIN) + " audit verify --state-dir " + (dir_ / "state").string());
  EXPECT_EQ(audit.exit_code, 0) << audit.output;
  // The coordinator received 9 masked inputs and not one plain update.
  absl::StatusOr<coordinator::AuditSummary> summary = coordinator::VerifyAuditLog((dir_ / "state").string());
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->events["masked_input"], 9);
  EXPECT_EQ(summary->events["secure_aggregate"], 3);
  EXPECT_FALSE(summary->events.contains("update"));
  CommandResult exported = RunCommand(std::string(SAMVERKA_BIN) + " export --config " +
                                      (dir_ / "coordinator.toml").string() + " --out " + (dir_ / "m.pt").string());
  EXPECT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_THAT(exported.output, HasSubstr(rounds.back().model_digest.substr(0, 16)));
}

TEST_F(FederationTest, ModelAndTestSetProblemsFailTheCoordinatorAtStart) {
  // Each failure ends `samverka coordinator` with a clear error line.
  auto start_error = [&](const std::string& model, const std::string& extra) {
    WriteCoordinatorConfig(3, 3, 3, extra, model);
    CommandResult r = RunCommand(std::string(SAMVERKA_BIN) + " coordinator --config " +
                                 (dir_ / "coordinator.toml").string());
    EXPECT_NE(r.exit_code, 0) << r.output;
    // The last error line is the coordinator's; lines before it are the
    // samverka-torch child's own log.
    const std::regex error("samverka: error: [^\n]*");
    std::string last;
    for (auto it = std::sregex_iterator(r.output.begin(), r.output.end(), error);
         it != std::sregex_iterator(); ++it) {
      last = it->str();
    }
    EXPECT_FALSE(last.empty()) << r.output;
    return last;
  };
  std::ofstream(dir_ / "not-torchscript.pt") << "a text file, not a TorchScript archive\n";
  EXPECT_THAT(start_error("not-torchscript.pt", ""),
              AllOf(HasSubstr("building model '"), HasSubstr("not-torchscript.pt"),
                    HasSubstr("cannot create model")));
  EXPECT_THAT(start_error("missing.pt", ""), HasSubstr("missing.pt does not exist"));
  // input_shape [30] does not fit the CNN.
  EXPECT_THAT(start_error("cnn", ""), AllOf(HasSubstr("building model 'cnn'"), HasSubstr("cnn")));
  EXPECT_THAT(start_error("logreg", "test_dataset = \"csv:no-such.csv:malignant\"\n"),
              AllOf(HasSubstr("evaluating on test set"), HasSubstr("no-such.csv")));
  EXPECT_THAT(start_error("logreg", "model_helper = \"/nonexistent/samverka-torch\"\n"),
              HasSubstr("cannot start /nonexistent/samverka-torch"));
}

TEST_F(FederationTest, AKilledClientDoesNotStopTheFederation) {
  // Four sites (site-d holds a copy of hospital A's data), secure
  // aggregation on: a round needs at least three.
  const int port = StartCoordinator(1000, 4, 3);
  ASSERT_GT(port, 0);
  StartClient("site-a", port, "hospital-a.csv");
  StartClient("site-b", port, "hospital-b.csv");
  StartClient("site-d", port, "hospital-a.csv");
  Process* c = StartClient("site-c", port, "hospital-c.csv");
  ASSERT_TRUE(c->WaitFor("sent a masked update")) << c->output();
  c->Kill(SIGKILL);
  ASSERT_TRUE(coordinator_->WaitFor("site-c went silent")) << coordinator_->output();
  // The federation goes on with the other three sites.
  const int before = coordinator_->Count(": 3 sites, train_loss");
  ASSERT_TRUE(coordinator_->WaitForCount(": 3 sites, train_loss", before + 2)) << coordinator_->output();
  // SIGTERM stops a daemon cleanly (exit 0) and the coordinator too.
  clients_[0]->Kill(SIGTERM);
  EXPECT_EQ(clients_[0]->Wait(), 0) << clients_[0]->output();
  EXPECT_THAT(clients_[0]->output(), HasSubstr("stopped"));
  coordinator_->Kill(SIGTERM);
  ASSERT_EQ(coordinator_->Wait(), 0) << coordinator_->output();
  std::vector<coordinator::RoundRecord> rounds = Rounds();
  ASSERT_GE(rounds.size(), 2u);
  int without_c = 0;
  for (const auto& r : rounds) {
    // A round that lost site-c mid-way fails cleanly: too few updates, or
    // too few sites left for secure aggregation (nothing revealed); the
    // last one may be cut short by the SIGTERM.
    EXPECT_TRUE(r.succeeded || r.failure_reason.find("only") != std::string::npos ||
                r.failure_reason.find("secure aggregation aborted") != std::string::npos ||
                r.failure_reason.find("stopping") != std::string::npos)
        << "round " << r.round << ": " << r.failure_reason;
    if (std::find(r.participants.begin(), r.participants.end(), "site-c") == r.participants.end()) ++without_c;
  }
  EXPECT_GE(without_c, 2) << "rounds after the kill go on with the other three sites";
}

TEST_F(FederationTest, TwoDaemonsCannotShareAStateDir) {
  // A second daemon with the same state_dir would overwrite the first's
  // policy ledger; it is refused at start and the first trains on.
  const int port = StartCoordinator(1000, 1, 1, "secure_aggregation = false\n");
  ASSERT_GT(port, 0);
  StartClient("site-a", port, "hospital-a.csv");
  ASSERT_TRUE(coordinator_->WaitFor("site site-a joined")) << coordinator_->output();
  Process* second = StartClient("site-a", port, "hospital-a.csv");
  EXPECT_NE(second->Wait(std::chrono::seconds(120)), 0) << second->output();
  EXPECT_THAT(second->output(), HasSubstr("another client daemon is running with state_dir"));
  EXPECT_TRUE(coordinator_->WaitFor("1/1000: 1 sites, train_loss")) << coordinator_->output();
}

TEST_F(FederationTest, ATestSetLostMidFederationCostsOnlyTestMetrics) {
  // The test set is read at start-up, then removed: later rounds still
  // succeed and are committed, without test metrics, and the federation
  // goes on.
  fs::copy_file(SAMVERKA_SOURCE_DIR "/examples/healthcare/holdout.csv", dir_ / "holdout.csv");
  const int port = StartCoordinator(3, 1, 1,
                                    "secure_aggregation = false\nfederated_evaluation = false\n"
                                    "test_dataset = \"csv:holdout.csv:malignant\"\n");
  ASSERT_GT(port, 0);
  ASSERT_THAT(coordinator_->output(), HasSubstr("the starting model has test_accuracy"));
  fs::remove(dir_ / "holdout.csv");
  StartClient("site-a", port, "hospital-a.csv");
  ASSERT_TRUE(coordinator_->WaitFor("finished 3 rounds")) << coordinator_->output();
  EXPECT_EQ(coordinator_->Count("no test metrics this round"), 3) << coordinator_->output();
  coordinator_->Kill(SIGTERM);
  ASSERT_EQ(coordinator_->Wait(), 0) << coordinator_->output();
  std::vector<coordinator::RoundRecord> rounds = Rounds();
  ASSERT_EQ(rounds.size(), 3u);
  for (const auto& r : rounds) {
    EXPECT_TRUE(r.succeeded) << "round " << r.round << ": " << r.failure_reason;
    EXPECT_FALSE(r.metrics.contains("test_accuracy"));
  }
}

TEST_F(FederationTest, SitesRefuseTasksThatBreakTheirPolicy) {
  // Plain aggregation, cohorts of all five sites, model logreg.
  const int port =
      StartCoordinator(1000, 5, 1, "secure_aggregation = false\nwait_for_clients = 5\n");
  ASSERT_GT(port, 0);
  Process* a = StartClient("site-a", port, "hospital-a.csv", "require_secure_aggregation = true\n");
  Process* b = StartClient("site-b", port, "hospital-b.csv", "min_cohort = 10\n");
  Process* c = StartClient("site-c", port, "hospital-c.csv", "allowed_models = [\"cnn\"]\n");
  Process* d = StartClient("site-d", port, "hospital-a.csv", "max_rounds_per_day = 1\n");
  StartClient("site-e", port, "hospital-b.csv");
  ASSERT_TRUE(coordinator_->WaitFor("round 3/1000: training")) << coordinator_->output();

  // While it runs, the operator sees the refusals and their reasons.
  CommandResult status = OperatorStatus(port);
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_THAT(status.output, HasSubstr("site-a"));
  EXPECT_THAT(status.output, HasSubstr("require_secure_aggregation"));
  EXPECT_THAT(status.output, HasSubstr("min_cohort"));

  for (auto& client : clients_) client->Kill(SIGTERM);
  coordinator_->Kill(SIGTERM);
  ASSERT_EQ(coordinator_->Wait(), 0) << coordinator_->output();
  const std::string log = coordinator_->output();
  EXPECT_THAT(log, HasSubstr("site-a did not run task round-1-train: site policy: this site "
                             "trains only with secure aggregation"));
  EXPECT_THAT(log, HasSubstr("site-b did not run task round-1-train: site policy: the round's "
                             "cohort has 5 sites"));
  EXPECT_THAT(log, HasSubstr("site-c did not run task round-1-train: site policy: model 'logreg' "
                             "is not among this site's allowed_models"));
  EXPECT_THAT(log, HasSubstr("site-d did not run task round-2-train: site policy: this site "
                             "already trained 1 rounds"));
  // Each refusing site logged it and sent no update.
  for (Process* p : {a, b, c, d}) p->Kill(SIGTERM);
  for (Process* p : {a, b, c}) {
    EXPECT_EQ(p->Wait(), 0) << p->output();
    EXPECT_THAT(p->output(), HasSubstr("refused the task"));
    EXPECT_EQ(p->Count("sent a model update"), 0) << p->output();
  }
  EXPECT_EQ(d->Wait(), 0) << d->output();
  EXPECT_EQ(d->Count("sent a model update"), 1) << d->output();
  // The rounds went on without them.
  std::vector<coordinator::RoundRecord> rounds = Rounds();
  ASSERT_GE(rounds.size(), 2u);
  EXPECT_TRUE(rounds[0].succeeded) << rounds[0].failure_reason;
  EXPECT_TRUE(rounds[1].succeeded) << rounds[1].failure_reason;
  EXPECT_THAT(rounds[0].participants, ::testing::UnorderedElementsAre("site-d", "site-e"));
  EXPECT_THAT(rounds[1].participants, ::testing::ElementsAre("site-e"));
}

TEST_F(FederationTest, DifferentialPrivacyUnderSecureAggregationWithASiteBudget) {
  // Central DP-FedAvg on the secure sum: q = 4 / 4 = 1, sigma = 1, C = 1.
  // One round costs epsilon 4.73 at delta 1e-5 and two 7.08 (RDP alpha/2
  // per round, Balle et al. 2020 conversion; `samverka privacy
  // --sampling-rate 1 --noise-multiplier 1 --rounds 1|2`), so site-d, with
  // a budget of 6, trains once and then refuses; the others go on.
  const int port = StartCoordinator(
      1000, 4, 3,
      "dp = \"central\"\ndp_noise_multiplier = 1.0\ndp_clip_norm = 1.0\ndp_population = 4\n"
      "secagg_dropout_rate = 0.3\nwait_for_clients = 4\n");
  ASSERT_GT(port, 0);
  StartClient("site-a", port, "hospital-a.csv");
  StartClient("site-b", port, "hospital-b.csv");
  StartClient("site-c", port, "hospital-c.csv");
  Process* d = StartClient("site-d", port, "hospital-a.csv", "max_epsilon = 6\n");
  ASSERT_TRUE(coordinator_->WaitFor("round 3/1000: training")) << coordinator_->output();
  CommandResult status = OperatorStatus(port);
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_THAT(status.output, HasSubstr("epsilon="));
  EXPECT_THAT(status.output, HasSubstr("max_epsilon"));
  for (auto& client : clients_) client->Kill(SIGTERM);
  coordinator_->Kill(SIGTERM);
  ASSERT_EQ(coordinator_->Wait(), 0) << coordinator_->output();
  EXPECT_THAT(coordinator_->output(),
              HasSubstr("site-d did not run task round-2-train: site policy: this round would "
                        "bring the site's privacy loss on data set 'breast' to epsilon"));
  EXPECT_THAT(d->output(), HasSubstr("privacy loss on data set 'breast' so far is epsilon"));
  std::vector<coordinator::RoundRecord> rounds = Rounds();
  ASSERT_GE(rounds.size(), 2u);
  ASSERT_TRUE(rounds[0].succeeded) << rounds[0].failure_reason;
  ASSERT_TRUE(rounds[1].succeeded) << rounds[1].failure_reason;
  EXPECT_EQ(rounds[0].participants.size(), 4u);
  EXPECT_THAT(rounds[1].participants, ::testing::UnorderedElementsAre("site-a", "site-b", "site-c"));
  ASSERT_TRUE(rounds[0].metrics.contains("epsilon"));
  EXPECT_GT(rounds[0].metrics.at("epsilon"), 3.0);
  EXPECT_LT(rounds[0].metrics.at("epsilon"), 6.0);
  EXPECT_GT(rounds[1].metrics.at("epsilon"), 6.0);
}

TEST_F(FederationTest, CoordinatorKilledMidRunResumes) {
  int port = StartCoordinator(5, 3, 3);
  ASSERT_GT(port, 0);
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    StartClient(site, port, std::string("hospital-") + site[5] + ".csv");
  }
  ASSERT_TRUE(coordinator_->WaitFor("round 2/5: 3 sites")) << coordinator_->output();
  coordinator_->Kill(SIGKILL);
  EXPECT_EQ(coordinator_->Wait(), 128 + SIGKILL);

  // Restart on the same port: the clients find it again by themselves.
  RestartCoordinatorOn(port);
  ASSERT_TRUE(coordinator_->WaitFor("resuming federation")) << coordinator_->output();
  ASSERT_EQ(coordinator_->Wait(), 0) << coordinator_->output();

  std::vector<coordinator::RoundRecord> rounds = Rounds();
  ASSERT_EQ(rounds.size(), 5u);
  for (size_t i = 0; i < rounds.size(); ++i) {
    EXPECT_EQ(rounds[i].round, static_cast<int64_t>(i + 1));
    EXPECT_TRUE(rounds[i].succeeded);
  }
  // It resumed from the model of the last committed round.
  std::smatch match;
  const std::string out = coordinator_->output();
  ASSERT_TRUE(std::regex_search(out, match, std::regex("from the checkpoint of round ([0-9]+) \\(([0-9a-f]+)\\)")));
  const int64_t resumed = std::stoll(match[1]);
  ASSERT_GE(resumed, 2);
  EXPECT_EQ(rounds[resumed - 1].model_digest.substr(0, 16), match[2].str());
  CommandResult audit = RunCommand(std::string(SAMVERKA_BIN) + " audit verify --state-dir " + (dir_ / "state").string());
  EXPECT_EQ(audit.exit_code, 0) << audit.output;
}

}  // namespace
}  // namespace samverka
