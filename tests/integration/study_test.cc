// A standing federation (issue 11): a coordinator and three hospital
// daemons, started once, run study after study that an operator submits
// with `samverka study`; real processes over mutual TLS on loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "security/tls.h"
#include "tests/integration/standing_federation.h"
#include "tests/integration/site_calls.h"

namespace samverka {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using StandingFederationTest = StandingFederationFixture;

TEST_F(StandingFederationTest, ThreeHospitalsRunStudyAfterStudyWithoutARestart) {
  StartStandingCoordinator();
  Process* a = StartSite("site-a", "hospital-a.csv");
  Process* b = StartSite("site-b", "hospital-b.csv");
  Process* c = StartSite("site-c", "hospital-c.csv");
  ASSERT_TRUE(coordinator_->WaitForCount("joined (data sets", 3)) << coordinator_->output();
  const pid_t pids[] = {a->pid(), b->pid(), c->pid()};

  WriteStudy("logreg.toml", "breast-logreg", "breast", "logreg", 2);
  WriteStudy("mlp.toml", "cohort2-mlp", "cohort2", "mlp", 2);
  WriteStudy("third.toml", "breast-again", "breast", "logreg", 1, "momentum = 0.5\n");
  // A bad study is refused at submit and nothing is stored: its data set
  // is not one any site named (the message lists the names).
  WriteStudy("bad.toml", "lung", "lung", "logreg", 2);
  CommandResult bad = Study("submit " + (dir_ / "bad.toml").string());
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.output, HasSubstr("breast, cohort2")) << bad.output;

  const std::string first = Submit("logreg.toml");
  const std::string second = Submit("mlp.toml");
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  ASSERT_TRUE(coordinator_->WaitFor("study " + second + " ('cohort2-mlp') is training",
                                    std::chrono::seconds(300)))
      << coordinator_->output();
  // Submitted while the second study trains: it queues, then runs.
  const std::string third = Submit("third.toml");
  ASSERT_TRUE(coordinator_->WaitFor("study " + third + " finished 1 rounds", std::chrono::seconds(300)))
      << coordinator_->output();

  CommandResult list = Study("list");
  ASSERT_EQ(list.exit_code, 0) << list.output;
  for (const std::string& id : {first, second, third}) {
    EXPECT_THAT(list.output, ::testing::ContainsRegex(id + " .* finished ")) << list.output;
  }
  EXPECT_THAT(list.output, ::testing::Not(HasSubstr("lung")));
  CommandResult show = Study("show " + first);
  ASSERT_EQ(show.exit_code, 0) << show.output;
  EXPECT_THAT(show.output, HasSubstr("rounds: 2 of 2 recorded, 2 committed"));
  EXPECT_THAT(show.output, HasSubstr("sites that took part: site-a site-b site-c"));

  // Each study's model and metrics are its own.
  CommandResult one = Study("export " + first + " --out " + (dir_ / "first.pt").string());
  ASSERT_EQ(one.exit_code, 0) << one.output;
  CommandResult two = Study("export " + second + " --out " + (dir_ / "second.svtb").string());
  ASSERT_EQ(two.exit_code, 0) << two.output;
  CommandResult first_raw = Study("export " + first + " --out " + (dir_ / "first.svtb").string());
  ASSERT_EQ(first_raw.exit_code, 0) << first_raw.output;
  EXPECT_TRUE(fs::is_regular_file(dir_ / "first.pt"));
  // logreg [30] -> 2 has 62 parameters, the MLP thousands.
  EXPECT_LT(fs::file_size(dir_ / "first.svtb") * 10, fs::file_size(dir_ / "second.svtb"));
  CommandResult metrics = Study("metrics " + second + " --format csv");
  ASSERT_EQ(metrics.exit_code, 0) << metrics.output;
  ASSERT_EQ(metrics.lines().size(), 3u) << metrics.output;  // header and 2 rounds
  EXPECT_THAT(metrics.lines()[0], HasSubstr("round"));

  // No daemon was restarted, or stopped by a study's end: each process is
  // alive and registered once, for all three studies.
  for (size_t i = 0; i < clients_.size(); ++i) {
    EXPECT_EQ(::kill(pids[i], 0), 0) << "daemon " << i << " is gone:\n" << clients_[i]->output();
    EXPECT_EQ(clients_[i]->Count("registered with federation"), 1) << clients_[i]->output();
  }
  CommandResult audit = RunCommand(std::string(SAMVERKA_BIN) + " audit verify --state-dir " +
                                   (dir_ / "state").string());
  EXPECT_EQ(audit.exit_code, 0) << audit.output;
  EXPECT_THAT(audit.output, HasSubstr("study.finished"));
}

TEST_F(StandingFederationTest, OnlyOperatorsManageStudiesAndOnlySitesPoll) {
  StartStandingCoordinator();
  // A site certificate cannot list, submit, abort or export.
  WriteStudy("s.toml", "s", "breast", "logreg", 1);
  for (const std::string args : {std::string("list"), "submit " + (dir_ / "s.toml").string(),
                                 std::string("abort 0123456789abcdef"),
                                 "export 0123456789abcdef --out " + (dir_ / "x.pt").string()}) {
    CommandResult r = Study(args, "site-a");
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_THAT(r.output, HasSubstr("role client, which may not call")) << args << ": " << r.output;
  }
  // An operator certificate cannot act as a site.
  const fs::path d = dir_ / "pki/sites/operator";
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      security::MakeChannelCredentials({(dir_ / "pki/ca/ca.crt").string(),
                                        (d / "operator.crt").string(), (d / "operator.key").string()});
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  auto stub = v1::Federation::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), *credentials));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::PollTaskResponse response;
  v1::PollTaskRequest request;
  request.set_protocol_version(v1::PROTOCOL_VERSION_1);
  EXPECT_EQ(stub->PollTask(&context, request, &response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(RegisterSite(*stub).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(StandingFederationTest, SitesRefuseAStudyTheirPolicyOrItsSignatureDoesNotAllow) {
  StartStandingCoordinator();
  StartSite("site-a", "hospital-a.csv");
  StartSite("site-b", "hospital-b.csv");
  // site-c runs only the logistic regression.
  Process* c = StartSite("site-c", "hospital-c.csv", "allowed_models = [\"logreg\"]\n");
  ASSERT_TRUE(coordinator_->WaitForCount("joined (data sets", 3)) << coordinator_->output();
  // Without secure aggregation two sites are enough, so the study trains
  // on site-a and site-b once site-c has refused it.
  WriteStudy("mlp.toml", "mlp-two-sites", "breast", "mlp", 2,
             "secure_aggregation = false\nfraction = 1.0\n");
  std::string text;
  {
    std::ifstream in(dir_ / "mlp.toml");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  text = std::regex_replace(text, std::regex("clients_per_round = 3\nmin_clients = 3"),
                            "min_clients = 2");
  std::ofstream(dir_ / "mlp.toml", std::ios::trunc) << text;
  const std::string mlp = Submit("mlp.toml");
  // Queued behind it, then altered at the coordinator (here in its
  // database) before any site has seen it: the coordinator itself no
  // longer runs it (its id does not name its bytes). A coordinator that
  // skipped this check would meet the sites' own (client/study_check.h;
  // DaemonStudyTest.AnAlteredStudyIsRefusedWithoutReadingAnyData).
  WriteStudy("logreg.toml", "altered", "breast", "logreg", 1);
  const std::string altered = Submit("logreg.toml");
  ASSERT_FALSE(altered.empty());
  CommandResult sql = RunSqlitePython(
      dir_, dir_ / "state/state.db",
      "db.execute(\"UPDATE studies SET manifest = replace(manifest, 'rounds = 1', 'rounds = 9') "
      "WHERE id = ? AND state = 'queued'\", (sys.argv[2],))\nprint(db.total_changes)\n"
      "db.commit()\n",
      altered, /*writable=*/true);
  ASSERT_EQ(sql.exit_code, 0) << sql.output;
  ASSERT_EQ(sql.lines().back(), "1") << "the altered study was no longer queued";
  // And a study injected into the database with no operator's signature
  // (its id computed right, so only the signature is wrong), run after them.
  CommandResult injected = RunSqlitePython(
      dir_, dir_ / "state/state.db",
      "import hashlib\n"
      "manifest = open(sys.argv[2]).read()\n"
      "fields = ['samverka signed study v1', 'test-federation', '1700000000000', 'ab' * 16, '',\n"
      "          manifest]\n"
      "signed = ''.join('%d:%s\\n' % (len(f.encode()), f) for f in fields)\n"
      "sid = hashlib.sha256(signed.encode()).hexdigest()[:16]\n"
      "cert = db.execute('SELECT operator_certificate FROM studies LIMIT 1').fetchone()[0]\n"
      "seq = db.execute('SELECT MAX(seq) + 1 FROM studies').fetchone()[0]\n"
      "db.execute('INSERT INTO studies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',\n"
      "           (sid, seq, 'injected', 'train', 'breast', 'logreg', 1, 'queued', '', 'operator',\n"
      "            1700000000000, manifest, '', 0, 'ab' * 16, cert, b'not a signature'))\n"
      "db.commit()\n"
      "print(sid)\n",
      (dir_ / "logreg.toml").string(), /*writable=*/true);
  ASSERT_EQ(injected.exit_code, 0) << injected.output;
  const std::string forged = injected.lines().back();

  ASSERT_TRUE(coordinator_->WaitFor("study " + mlp + " finished 2 rounds", std::chrono::seconds(300)))
      << coordinator_->output();
  EXPECT_TRUE(c->WaitFor("refused study " + mlp)) << c->output();
  CommandResult show = Study("show " + mlp);
  ASSERT_EQ(show.exit_code, 0) << show.output;
  EXPECT_THAT(show.output, ::testing::ContainsRegex("site-c .*allowed_models")) << show.output;
  EXPECT_THAT(show.output, HasSubstr("sites that took part: site-a site-b\n")) << show.output;

  // The forged study never starts: its signature does not verify.
  EXPECT_TRUE(coordinator_->WaitFor("study " + forged + " cannot start: the stored study " +
                                    forged + " no longer verifies: the study's signature does not verify"))
      << coordinator_->output();
  // The altered one is refused by the coordinator if it read the study
  // after the change, else by every site (which fetches it after).
  if (coordinator_->Count("study " + altered + " cannot start: the stored study " + altered +
                          " no longer matches its id") == 0) {
    for (const auto& client : clients_) {
      EXPECT_TRUE(client->WaitFor("refused study " + altered, std::chrono::seconds(120)))
          << client->output();
      EXPECT_THAT(client->output(),
                  ::testing::ContainsRegex("refused study " + altered + ": .*was changed"));
    }
  }
  for (const auto& client : clients_) {
    EXPECT_THAT(client->output(), ::testing::Not(HasSubstr("of study " + forged)));
  }
  // Nothing of it was trained (the coordinator may have read the manifest
  // before or after the change: either way no site took part).
  CommandResult shown = Study("show " + altered);
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_THAT(shown.output, ::testing::ContainsRegex("rounds: [0-9]+ of [0-9]+ recorded, 0 committed"))
      << shown.output;
}

TEST_F(StandingFederationTest, ATorchScriptModelTravelsWithItsStudyAndSitesAllowItByDigest) {
  if (RunCommand("/usr/bin/python3 -c 'import torch'").exit_code != 0) {
    GTEST_SKIP() << "python3-torch is not installed (scripts/install-deps installs it)";
  }
  CommandResult made = RunCommand(std::string("/usr/bin/python3 ") + SAMVERKA_SOURCE_DIR +
                                  "/examples/pytorch/make_scripted_model.py tabular-mlp "
                                  "--features 30 --classes 2 --out " + (dir_ / "tabular.pt").string());
  ASSERT_EQ(made.exit_code, 0) << made.output;
  CommandResult digest = RunCommand("sha256sum " + (dir_ / "tabular.pt").string());
  ASSERT_EQ(digest.exit_code, 0) << digest.output;
  const std::string sha = digest.output.substr(0, 64);
  StartStandingCoordinator();
  // site-a and site-b allow this file by its digest; site-c allows only
  // another digest, so it refuses the study before it reads any data.
  StartSite("site-a", "hospital-a.csv", "allowed_models = [\"" + sha + "\"]\n");
  StartSite("site-b", "hospital-b.csv", "allowed_models = [\"" + sha + "\"]\n");
  Process* c = StartSite("site-c", "hospital-c.csv",
                         "allowed_models = [\"" + std::string(64, 'a') + "\"]\n");
  ASSERT_TRUE(coordinator_->WaitForCount("joined (data sets", 3)) << coordinator_->output();
  WriteStudy("scripted.toml", "scripted", "breast", "tabular.pt", 2,
             "secure_aggregation = false\nfraction = 1.0\n");
  std::string text;
  {
    std::ifstream in(dir_ / "scripted.toml");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  text = std::regex_replace(text, std::regex("clients_per_round = 3\nmin_clients = 3"),
                            "min_clients = 2");
  std::ofstream(dir_ / "scripted.toml", std::ios::trunc) << text;
  // The file is named in the manifest and must come with it.
  CommandResult without = Study("submit " + (dir_ / "scripted.toml").string());
  EXPECT_NE(without.exit_code, 0);
  EXPECT_THAT(without.output, HasSubstr("--model-file")) << without.output;
  CommandResult r = Study("submit " + (dir_ / "scripted.toml").string() + " --model-file " +
                          (dir_ / "tabular.pt").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("study ([0-9a-f]{16}) "))) << r.output;
  const std::string id = m[1].str();
  ASSERT_TRUE(coordinator_->WaitFor("study " + id + " finished 2 rounds", std::chrono::seconds(300)))
      << coordinator_->output();
  EXPECT_TRUE(c->WaitFor("refused study " + id)) << c->output();
  // The sites that trained hold the file under its digest.
  for (const char* site : {"site-a", "site-b"}) {
    const fs::path kept = dir_ / (std::string("state-") + site) / "models" / (sha + ".pt");
    ASSERT_TRUE(fs::is_regular_file(kept)) << kept;
    EXPECT_EQ(fs::file_size(kept), fs::file_size(dir_ / "tabular.pt"));
  }
  EXPECT_FALSE(fs::exists(dir_ / "state-site-c" / "models" / (sha + ".pt")));
  CommandResult show = Study("show " + id);
  EXPECT_THAT(show.output, HasSubstr("rounds: 2 of 2 recorded, 2 committed")) << show.output;
  EXPECT_THAT(show.output, ::testing::ContainsRegex("site-c .*allowed_models")) << show.output;
  CommandResult exported = Study("export " + id + " --out " + (dir_ / "trained.pt").string() +
                                 " --model-file " + (dir_ / "tabular.pt").string());
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  CommandResult loads = RunCommand(
      "/usr/bin/python3 -c 'import torch,sys; m = torch.jit.load(sys.argv[1]); "
      "print(tuple(m(torch.zeros(4, 30)).shape))' " + (dir_ / "trained.pt").string());
  ASSERT_EQ(loads.exit_code, 0) << loads.output;
  EXPECT_THAT(loads.output, HasSubstr("(4, 2)"));
}

TEST_F(StandingFederationTest, AKilledCoordinatorResumesItsStudyThenRunsTheQueuedOne) {
  StartStandingCoordinator();
  StartSite("site-a", "hospital-a.csv");
  StartSite("site-b", "hospital-b.csv");
  StartSite("site-c", "hospital-c.csv");
  ASSERT_TRUE(coordinator_->WaitForCount("joined (data sets", 3)) << coordinator_->output();
  WriteStudy("long.toml", "long", "breast", "logreg", 12);
  WriteStudy("next.toml", "next", "cohort2", "logreg", 2);
  const std::string first = Submit("long.toml");
  const std::string second = Submit("next.toml");
  ASSERT_TRUE(coordinator_->WaitFor("round 2/12: 3 sites", std::chrono::seconds(300)))
      << coordinator_->output();
  coordinator_->Kill(SIGKILL);
  coordinator_->Wait();
  RestartCoordinatorOn(port_);
  ASSERT_TRUE(coordinator_->WaitFor("resuming study " + first, std::chrono::seconds(120)))
      << coordinator_->output();
  ASSERT_TRUE(coordinator_->WaitFor("study " + second + " finished 2 rounds", std::chrono::seconds(300)))
      << coordinator_->output();
  // Every round of the first study once, in order, from 1 to 12; the
  // second study's rounds are its own, from 1.
  CommandResult rounds = RunSqlitePython(
      dir_, dir_ / "state/state.db",
      "for study, in db.execute('SELECT DISTINCT study FROM rounds ORDER BY study'):\n"
      "  rs = [r for r, in db.execute('SELECT round FROM rounds WHERE study = ? AND succeeded = 1 "
      "ORDER BY round', (study,))]\n"
      "  print(study, ','.join(map(str, rs)))\n");
  ASSERT_EQ(rounds.exit_code, 0) << rounds.output;
  EXPECT_THAT(rounds.output, HasSubstr(first + " 1,2,3,4,5,6,7,8,9,10,11,12")) << rounds.output;
  EXPECT_THAT(rounds.output, HasSubstr(second + " 1,2")) << rounds.output;
  CommandResult list = Study("list");
  EXPECT_THAT(list.output, ::testing::ContainsRegex(first + " .* finished ")) << list.output;
  EXPECT_THAT(list.output, ::testing::ContainsRegex(second + " .* finished ")) << list.output;
  CommandResult audit = RunCommand(std::string(SAMVERKA_BIN) + " audit verify --state-dir " +
                                   (dir_ / "state").string());
  EXPECT_EQ(audit.exit_code, 0) << audit.output;
}

TEST_F(StandingFederationTest, AStudyEditedInTheStateDatabaseDoesNotRun) {
  StartStandingCoordinator();
  WriteStudy("first.toml", "first", "breast", "logreg", 12);
  WriteStudy("second.toml", "second", "breast", "logreg", 2);
  const std::string first = Submit("first.toml");
  ASSERT_TRUE(coordinator_->WaitFor("study " + first + " ('first') is training")) << coordinator_->output();
  const std::string second = Submit("second.toml");
  coordinator_->Kill(SIGKILL);
  coordinator_->Wait();
  // Behind the coordinator's back: the first study asks for more rounds.
  CommandResult edited = RunSqlitePython(
      dir_, dir_ / "state/state.db",
      "db.execute(\"UPDATE studies SET manifest = replace(CAST(manifest AS TEXT), 'rounds = 12', "
      "'rounds = 120') WHERE id = ?\", (sys.argv[2],))\ndb.commit()\n",
      first, /*writable=*/true);
  ASSERT_EQ(edited.exit_code, 0) << edited.output;
  RestartCoordinatorOn(port_);
  ASSERT_TRUE(coordinator_->WaitFor("study " + first + " cannot start: the stored study " + first +
                                    " no longer matches its id"))
      << coordinator_->output();
  // The queued study, untouched, starts next.
  ASSERT_TRUE(coordinator_->WaitFor("study " + second + " ('second') is training"))
      << coordinator_->output();
  CommandResult list = Study("list");
  EXPECT_THAT(list.output, ::testing::ContainsRegex(first + " .* failed")) << list.output;
}

}  // namespace
}  // namespace samverka
