// A 500 MB model goes through the real coordinator over mutual TLS: the
// model is streamed to a site and an update of the same size back, in 1 MiB
// chunks, far above gRPC's 4 MiB message limit; and the coordinator holds a
// few models' worth of memory, not copies per upload.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/codec.h"
#include "security/tls.h"
#include "tests/integration/federation_files.h"
#include "tests/integration/process.h"
#include "tests/integration/run_command.h"
#include "tests/integration/site_calls.h"

namespace samverka {
namespace {

namespace fs = std::filesystem;

// A field of /proc/PID/status in KiB (VmRSS, VmHWM), -1 if unreadable.
int64_t ProcStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

TEST(LargeModelTest, A500MBModelStreamsThroughTheCoordinatorAndBack) {
  const fs::path dir = FreshTestDir("samverka_large_");
  for (const std::string args :
       {"init --dir pki --federation large", "issue --dir pki --name site-a",
        "issue --dir pki --name coordinator --role coordinator --san 127.0.0.1"}) {
    CommandResult r = RunPki(dir, args);
    ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.output;
  }
  // logreg is one linear layer: 50,000 inputs x 2,500 classes + biases =
  // 125,002,500 float parameters, 476.8 MiB encoded. Two rounds, so the
  // coordinator is still running (waiting in round 2) when it is measured.
  std::ofstream(dir / "coordinator.toml")
      << "federation_id = \"large\"\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n"
      << "rounds = 2\nmodel = \"logreg\"\ninput_shape = [50000]\nnum_classes = 2500\n"
      << "clients_per_round = 1\nmin_clients = 1\nsecure_aggregation = false\n"
      << "federated_evaluation = false\ntrain_deadline_seconds = 600\n"
      << CoordinatorTlsSection();
  Process coordinator({SAMVERKA_BIN, "coordinator", "--config", (dir / "coordinator.toml").string()});
  ASSERT_TRUE(coordinator.WaitFor("with mutual TLS", std::chrono::seconds(300))) << coordinator.output();
  const int port = ListeningPort(coordinator.output());
  ASSERT_GT(port, 0);

  const fs::path site = dir / "pki/sites/site-a";
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      security::MakeChannelCredentials({(dir / "pki/ca/ca.crt").string(),
                                        (site / "site-a.crt").string(),
                                        (site / "site-a.key").string()});
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  auto stub = v1::Federation::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), *credentials));
  ASSERT_TRUE(RegisterSite(*stub).ok());
  const v1::Task task = PollForTask(*stub);
  ASSERT_FALSE(task.task_id().empty()) << coordinator.output();

  const std::string model = DownloadModel(*stub, task.model_digest());
  const uint64_t model_bytes = model.size();
  ASSERT_GT(model_bytes, uint64_t{476} << 20);
  ASSERT_EQ(Sha256Hex(model), task.model_digest());
  // The update is the model itself (finite, the right layout): the next
  // global model is twice this one.
  grpc::Status uploaded = StreamUpload(*stub, task, model, std::chrono::seconds(600));
  ASSERT_TRUE(uploaded.ok()) << uploaded.error_message() << "\n" << coordinator.output();
  ASSERT_TRUE(coordinator.WaitFor("round 1/2: 1 sites", std::chrono::seconds(300)))
      << coordinator.output();
  // Round 2 waits for a site that no longer polls; only round 1 counts.
  const std::string round_one = coordinator.OutputUntil("round 1/2: 1 sites");
  EXPECT_THAT(round_one, ::testing::Not(::testing::HasSubstr("failed")));
  EXPECT_THAT(round_one, ::testing::Not(::testing::HasSubstr("went silent")));

  // The coordinator's peak holds the encoded model, the double-precision
  // sum (2 models), the upload being decoded and, while the round closes,
  // the decoded and the new encoded model: about 4-5 models plus the
  // process itself. Assembling each upload and decoding a second copy, or
  // keeping flat copies next to the encoded model, would exceed this.
  const int64_t peak_kb = ProcStatusKb(coordinator.pid(), "VmHWM");
  ASSERT_GT(peak_kb, 0);
  const double model_mib = model_bytes / 1048576.0;
  EXPECT_LT(peak_kb / 1024.0, 5 * model_mib + 200)
      << "coordinator peak " << peak_kb / 1024 << " MiB for a " << model_mib << " MiB model";
  coordinator.Kill(SIGTERM);
  EXPECT_EQ(coordinator.Wait(), 0) << coordinator.output();
  fs::remove_all(dir);
}

// A real daemon with a heartbeat of 0.5 s downloads the 476.8 MiB model,
// trains on it and uploads its update: the minutes a transfer can take on a
// busy machine never make the coordinator take it for offline (it counts
// every chunk as a sign of life).
TEST(LargeModelTest, ARealDaemonWithAHalfSecondHeartbeatTrainsOnA500MBModel) {
  const fs::path dir = FreshTestDir("samverka_large_daemon_");
  for (const std::string args :
       {"init --dir pki --federation large", "issue --dir pki --name site-a",
        "issue --dir pki --name coordinator --role coordinator --san 127.0.0.1"}) {
    CommandResult r = RunPki(dir, args);
    ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.output;
  }
  // Four patients with 50,000 features; class ids up to 2,499 make the
  // site's model the coordinator's logreg [50000] -> 2500.
  {
    std::ofstream csv(dir / "site-a.csv");
    for (int j = 0; j < 50000; ++j) csv << "f" << j << ",";
    csv << "label\n";
    for (int row = 0; row < 4; ++row) {
      for (int j = 0; j < 50000; ++j) csv << ((j * 7 + row * 13) % 17) * 0.1 << ",";
      csv << (row == 3 ? 2499 : row) << "\n";
    }
  }
  std::ofstream(dir / "coordinator.toml")
      << "federation_id = \"large\"\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n"
      << "rounds = 1\nmodel = \"logreg\"\ninput_shape = [50000]\nnum_classes = 2500\n"
      << "clients_per_round = 1\nmin_clients = 1\nsecure_aggregation = false\n"
      << "federated_evaluation = false\ntrain_deadline_seconds = 900\n"
      << "heartbeat_seconds = 0.5\nmax_poll_seconds = 1\n"
      << CoordinatorTlsSection();
  Process coordinator({SAMVERKA_BIN, "coordinator", "--config", (dir / "coordinator.toml").string()});
  ASSERT_TRUE(coordinator.WaitFor("with mutual TLS", std::chrono::seconds(300))) << coordinator.output();
  const int port = ListeningPort(coordinator.output());
  ASSERT_GT(port, 0);
  std::ofstream(dir / "site-a.toml")
      << "coordinator = \"127.0.0.1:" << port << "\"\n"
      << "eval_fraction = 0\npoll_seconds = 1\nmax_backoff_seconds = 1\nstate_dir = \"state-a\"\n"
      << "[datasets]\nwide = \"csv:site-a.csv:label\"\n"
      << "[tls]\nca_certificate = \"pki/ca/ca.crt\"\n"
      << "certificate = \"pki/sites/site-a/site-a.crt\"\n"
      << "private_key = \"pki/sites/site-a/site-a.key\"\n";
  Process site({SAMVERKA_BIN, "client", "--config", (dir / "site-a.toml").string()});
  ASSERT_TRUE(coordinator.WaitFor("round 1/1: 1 sites", std::chrono::seconds(900)))
      << coordinator.output() << "\n--- site ---\n" << site.output();
  const std::string round_one = coordinator.OutputUntil("round 1/1: 1 sites");
  EXPECT_THAT(round_one, ::testing::Not(::testing::HasSubstr("went silent"))) << site.output();
  EXPECT_THAT(round_one, ::testing::Not(::testing::HasSubstr("failed"))) << site.output();
  EXPECT_TRUE(site.WaitFor("sent a model update of", std::chrono::seconds(60))) << site.output();
  EXPECT_EQ(coordinator.Wait(std::chrono::seconds(120)), 0) << coordinator.output();
  site.Kill(SIGTERM);  // a site serves until stopped
  EXPECT_EQ(site.Wait(std::chrono::seconds(120)), 0) << site.output();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace samverka
