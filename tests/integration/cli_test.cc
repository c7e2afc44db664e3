// The `samverka` executable as a user runs it: bad input gets one clear
// error line and a non-zero exit; a good run prints progress per round.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "tests/integration/federation_files.h"
#include "tests/integration/run_command.h"

namespace samverka {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("samverka_cli_");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }

  // Runs `samverka simulate ARGS` with output in the temp dir.
  CommandResult Simulate(const std::string& args) {
    return RunCommand(std::string(SAMVERKA_BIN) + " --log-level warn simulate --out " +
                      (dir_ / "out").string() + " " + args);
  }

  // The error lines ("samverka: error: ...") of a run.
  static std::vector<std::string> ErrorLines(const CommandResult& r) {
    std::vector<std::string> lines;
    for (const std::string& line : r.lines()) {
      if (line.rfind("samverka: error: ", 0) == 0) lines.push_back(line);
    }
    return lines;
  }

  void ExpectOneError(const CommandResult& r, const std::string& fragment) {
    EXPECT_NE(r.exit_code, 0) << r.output;
    std::vector<std::string> errors = ErrorLines(r);
    ASSERT_EQ(errors.size(), 1u) << r.output;
    EXPECT_THAT(errors[0], HasSubstr(fragment));
    EXPECT_EQ(r.lines().size(), 1u) << "nothing but the error line:\n" << r.output;
  }

  std::string Csv() const { return (dir_ / "data.csv").string(); }
  fs::path dir_;
};

TEST_F(CliTest, TruncatedIdxFile) {
  // A label file whose header promises 100 labels but holds 10.
  std::string labels("\x00\x00\x08\x01\x00\x00\x00\x64", 8);
  labels += std::string(10, '\x01');
  std::string images("\x00\x00\x08\x03\x00\x00\x00\x64\x00\x00\x00\x1c\x00\x00\x00\x1c", 16);
  images += std::string(100 * 28 * 28, '\x10');
  for (const char* split : {"train", "t10k"}) {
    Write(std::string(split) + "-images-idx3-ubyte", images);
    Write(std::string(split) + "-labels-idx1-ubyte", labels);
  }
  CommandResult r = Simulate("--dataset mnist --data-dir " + dir_.string());
  ExpectOneError(r, "labels-idx1-ubyte");
}

TEST_F(CliTest, CsvWithoutTheLabelColumn) {
  Write("data.csv", "a,b,y\n1,2,0\n3,4,1\n");
  CommandResult r = Simulate("--dataset csv:" + Csv() + ":label --model logreg --clients 1 --clients-per-round 1 --secure-aggregation false");
  ExpectOneError(r, "label");
}

TEST_F(CliTest, CsvWithANonNumericCell) {
  Write("data.csv", "a,b,y\n1,2,0\n3,oops,1\n");
  CommandResult r = Simulate("--dataset csv:" + Csv() + ":y --model logreg --clients 1 --clients-per-round 1 --secure-aggregation off");
  ExpectOneError(r, "oops");
  EXPECT_THAT(ErrorLines(r)[0], HasSubstr(":3"));
}

TEST_F(CliTest, UnknownModel) {
  ExpectOneError(Simulate("--model resnet9000"), "unknown model 'resnet9000'");
}

TEST_F(CliTest, UnknownConfigKey) {
  Write("sim.toml", "rounds = 2\nlocal_epoch = 3\n");
  ExpectOneError(Simulate("--config " + (dir_ / "sim.toml").string()), "unknown key 'local_epoch'");
}

TEST_F(CliTest, MoreClientsPerRoundThanClients) {
  ExpectOneError(Simulate("--clients 5 --clients-per-round 6"),
                 "clients_per_round = 6 is larger than clients = 5");
}

TEST_F(CliTest, GoodRunPrintsProgressAndFlagsOverrideConfig) {
  std::string csv = "f1,f2,y\n";
  for (int i = 0; i < 200; ++i) {
    csv += std::to_string(i % 2 ? 1.0 + (i % 7) * 0.1 : -1.0 - (i % 5) * 0.1) + "," +
           std::to_string((i % 3) * 0.5) + "," + std::to_string(i % 2) + "\n";
  }
  Write("data.csv", csv);
  Write("sim.toml", "rounds = 7\nclients = 4\nclients_per_round = 3\nmodel = \"logreg\"\n");
  CommandResult r = Simulate("--config " + (dir_ / "sim.toml").string() + " --dataset csv:" +
                             Csv() + ":y --rounds 2 --lr 0.2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("round   1/2  clients   3"));
  EXPECT_THAT(r.output, HasSubstr("round   2/2"));
  EXPECT_THAT(r.output, HasSubstr("auc"));
  EXPECT_THAT(r.output, Not(HasSubstr("round   3/")));
  for (const char* file : {"metrics.jsonl", "metrics.csv", "model.pt", "config.toml"}) {
    EXPECT_TRUE(fs::exists(dir_ / "out" / file)) << file;
  }
}

TEST_F(CliTest, HelpListsEveryCommandAndTorchCommandsShowTheirOwnHelp) {
  CommandResult help = RunCommand(std::string(SAMVERKA_BIN) + " --help");
  EXPECT_EQ(help.exit_code, 0) << help.output;
  for (const char* command : {"pki", "audit", "privacy", "coordinator", "status", "client", "simulate", "export"}) {
    EXPECT_THAT(help.output, HasSubstr(std::string("\n  ") + command + " ")) << command;
  }
  EXPECT_THAT(help.output, Not(HasSubstr("  model ")));  // internal, for the coordinator
  // Passed through to samverka-torch, which names itself samverka.
  CommandResult client = RunCommand(std::string(SAMVERKA_BIN) + " --log-level warn client --help");
  EXPECT_EQ(client.exit_code, 0) << client.output;
  EXPECT_THAT(client.output, HasSubstr("Usage: samverka client"));
  EXPECT_THAT(client.output, HasSubstr("client.toml"));
}

TEST_F(CliTest, TheCliAgreesWithItself) {
  CommandResult version = RunCommand(std::string(SAMVERKA_BIN) + " --version");
  EXPECT_EQ(version.exit_code, 0) << version.output;
  EXPECT_THAT(version.output, HasSubstr("samverka 0."));
  // --days 0 is an error, not a silent 365.
  CommandResult init = RunCommand(std::string(SAMVERKA_BIN) + " pki init --dir " +
                                  (dir_ / "pki").string() + " --federation f");
  ASSERT_EQ(init.exit_code, 0) << init.output;
  // --log-level after the subcommand, as before it.
  CommandResult late = RunCommand(std::string(SAMVERKA_BIN) + " pki list --dir " +
                                  (dir_ / "pki").string() + " --log-level warn");
  EXPECT_EQ(late.exit_code, 0) << late.output;
  CommandResult zero = RunCommand(std::string(SAMVERKA_BIN) + " pki issue --dir " +
                                  (dir_ / "pki").string() + " --name site-a --days 0");
  EXPECT_NE(zero.exit_code, 0) << zero.output;
  EXPECT_THAT(zero.output, HasSubstr("--days"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "pki/sites/site-a/site-a.crt"));
}

TEST_F(CliTest, TorchCommandsWithoutSamverkaTorchNameThePathTheyLookedFor) {
  // samverka alone in a directory: its own commands work, the torch ones
  // say which file is missing.
  fs::copy_file(SAMVERKA_BIN, dir_ / "samverka");
  fs::permissions(dir_ / "samverka", fs::perms::owner_all);
  CommandResult privacy = RunCommand((dir_ / "samverka").string() +
                                     " privacy --sampling-rate 1 --noise-multiplier 1 --rounds 1");
  EXPECT_EQ(privacy.exit_code, 0) << privacy.output;
  CommandResult client = RunCommand((dir_ / "samverka").string() + " client --config x.toml");
  EXPECT_NE(client.exit_code, 0);
  ExpectOneError(client, "cannot run " + (dir_ / "samverka-torch").string());
}

TEST_F(CliTest, TheDaemonChecksItsKeyBeforeItConnects) {
  for (const std::string args : {"init --dir pki --federation f", "issue --dir pki --name site-a",
                                 "issue --dir pki --name site-b"}) {
    CommandResult r = RunPki(dir_, args);
    ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.output;
  }
  // Nothing listens on port 1: the daemon must stop before it tries.
  const fs::path config = WriteClientConfig(dir_, "site-a", "127.0.0.1:1", "hospital-a.csv");
  std::string text;
  {
    std::ifstream in(config);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string wrong = std::regex_replace(text, std::regex("site-a/site-a.key"), "site-b/site-b.key");
  std::ofstream(dir_ / "wrong-key.toml") << wrong;
  CommandResult mismatch = RunCommand(std::string(SAMVERKA_BIN) + " client --config " +
                                      (dir_ / "wrong-key.toml").string());
  EXPECT_NE(mismatch.exit_code, 0) << mismatch.output;
  EXPECT_THAT(mismatch.output, HasSubstr("site-b.key does not belong to the certificate"));
  EXPECT_THAT(mismatch.output, Not(HasSubstr("retrying")));

  fs::permissions(dir_ / "pki/sites/site-a/site-a.key", fs::perms::others_read, fs::perm_options::add);
  CommandResult open = RunCommand(std::string(SAMVERKA_BIN) + " client --config " + config.string());
  EXPECT_NE(open.exit_code, 0) << open.output;
  EXPECT_THAT(open.output, HasSubstr("is readable by every user of this machine"));
  EXPECT_THAT(open.output, HasSubstr("chmod 600"));
}

}  // namespace
}  // namespace samverka
