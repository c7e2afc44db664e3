// Liveness during transfers: a site whose model download or update upload
// takes longer than the coordinator's silence timeout is still alive while
// its chunks move, and a site whose stream stalls is not. The coordinator
// here takes a site for offline after 3 x 1 s + 2 s = 5 s of silence.
//
// The sleeps below are not synchronisation: they are the slow link (each
// chunk takes a little while), so that a transfer outlasts the timeout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "common/codec.h"
#include "security/tls.h"
#include "tests/integration/federation_files.h"
#include "tests/integration/process.h"
#include "tests/integration/run_command.h"
#include "tests/integration/site_calls.h"

namespace samverka {
namespace {

namespace fs = std::filesystem;

class TransferLivenessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("samverka_liveness_");
    for (const std::string args :
         {"init --dir pki --federation live", "issue --dir pki --name site-a",
          "issue --dir pki --name coordinator --role coordinator --san 127.0.0.1"}) {
      CommandResult r = RunPki(dir_, args);
      ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.output;
    }
    // logreg [50000] -> 400: 20,000,400 parameters, about 76 MiB encoded.
    // The coordinator sees a download move only as gRPC and TCP accept its
    // chunks; the last MiB or so sit in their buffers, so the model is large
    // enough that this tail is read well within the silence timeout.
    std::ofstream(dir_ / "coordinator.toml")
        << "federation_id = \"live\"\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n"
        << "rounds = 2\nmodel = \"logreg\"\ninput_shape = [50000]\nnum_classes = 400\n"
        << "clients_per_round = 1\nmin_clients = 1\nsecure_aggregation = false\n"
        << "federated_evaluation = false\ntrain_deadline_seconds = 120\n"
        << "heartbeat_seconds = 1\nmax_poll_seconds = 2\ntransfer_stall_seconds = 8\n"
        << CoordinatorTlsSection();
    coordinator_ = std::make_unique<Process>(std::vector<std::string>{
        SAMVERKA_BIN, "coordinator", "--config", (dir_ / "coordinator.toml").string()});
    ASSERT_TRUE(coordinator_->WaitFor("with mutual TLS", std::chrono::seconds(120)))
        << coordinator_->output();
    const int port = ListeningPort(coordinator_->output());
    ASSERT_GT(port, 0);
    const fs::path site = dir_ / "pki/sites/site-a";
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        security::MakeChannelCredentials({(dir_ / "pki/ca/ca.crt").string(),
                                          (site / "site-a.crt").string(),
                                          (site / "site-a.key").string()});
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    // Without BDP probing the site's receive window stays small, so what
    // the coordinator has sent is close to what the site has read (with it,
    // tens of MiB sit in buffers, read after the coordinator's last write;
    // the real daemon heartbeats all through a task and does not rely on
    // this).
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    stub_ = v1::Federation::NewStub(grpc::CreateCustomChannel(
        "127.0.0.1:" + std::to_string(port), *credentials, args));
    ASSERT_TRUE(RegisterSite(*stub_).ok());
  }

  void TearDown() override {
    coordinator_.reset();
    fs::remove_all(dir_);
  }

  fs::path dir_;
  std::unique_ptr<Process> coordinator_;
  std::unique_ptr<v1::Federation::Stub> stub_;
};

TEST_F(TransferLivenessTest, ASlowDownloadAndASlowUploadKeepTheSiteAlive) {
  const v1::Task task = PollForTask(*stub_);
  ASSERT_FALSE(task.task_id().empty()) << coordinator_->output();
  // About 1,220 chunks of 64 KiB at 8 ms each: some 10 s in each direction,
  // twice the silence timeout, with no call besides the transfer.
  const auto slow_link = [] { std::this_thread::sleep_for(std::chrono::milliseconds(8)); };
  const std::string model = DownloadModel(*stub_, task.model_digest(), 64 << 10, slow_link);
  ASSERT_EQ(Sha256Hex(model), task.model_digest());
  const grpc::Status uploaded =
      StreamUpload(*stub_, task, model, std::chrono::seconds(120), 64 << 10, slow_link);
  ASSERT_TRUE(uploaded.ok()) << uploaded.error_message() << "\n" << coordinator_->output();
  ASSERT_TRUE(coordinator_->WaitFor("round 1/2: 1 sites", std::chrono::seconds(60)))
      << coordinator_->output();
  // Round 2 waits for a site that no longer polls; only round 1 counts.
  const std::string round_one = coordinator_->OutputUntil("round 1/2: 1 sites");
  EXPECT_THAT(round_one, ::testing::Not(::testing::HasSubstr("went silent")));
  EXPECT_THAT(round_one, ::testing::Not(::testing::HasSubstr("failed")));
}

TEST_F(TransferLivenessTest, AStalledDownloadDoesNotKeepTheSiteAlive) {
  const v1::Task task = PollForTask(*stub_);
  ASSERT_FALSE(task.task_id().empty()) << coordinator_->output();
  grpc::ClientContext context;
  v1::DownloadModelRequest request;
  request.set_model_digest(task.model_digest());
  request.set_chunk_bytes(64 << 10);
  auto reader = stub_->DownloadModel(&context, request);
  v1::TensorChunk chunk;
  ASSERT_TRUE(reader->Read(&chunk));
  // The site reads no further: once gRPC's buffers are full nothing moves,
  // and the coordinator must take it for offline.
  EXPECT_TRUE(coordinator_->WaitFor("site site-a went silent", std::chrono::seconds(60)))
      << coordinator_->output();
  // Nor does it keep its download slot: the stream is cut.
  EXPECT_TRUE(coordinator_->WaitFor("cut the model download of site site-a", std::chrono::seconds(60)))
      << coordinator_->output();
  while (reader->Read(&chunk)) {
  }
  EXPECT_FALSE(reader->Finish().ok());
}

TEST_F(TransferLivenessTest, ASiteHasOneDownloadAtATime) {
  const v1::Task task = PollForTask(*stub_);
  ASSERT_FALSE(task.task_id().empty()) << coordinator_->output();
  grpc::ClientContext first_context;
  v1::DownloadModelRequest request;
  request.set_model_digest(task.model_digest());
  auto first = stub_->DownloadModel(&first_context, request);
  v1::TensorChunk chunk;
  ASSERT_TRUE(first->Read(&chunk));  // the first download is open
  grpc::ClientContext second_context;
  auto second = stub_->DownloadModel(&second_context, request);
  EXPECT_FALSE(second->Read(&chunk));
  const grpc::Status refused = second->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("already has a model download open"));
  // The first goes on to the end.
  uint64_t bytes = chunk.data().size();
  while (first->Read(&chunk)) bytes += chunk.data().size();
  EXPECT_TRUE(first->Finish().ok());
  EXPECT_EQ(bytes, chunk.total_bytes());
}

TEST_F(TransferLivenessTest, AStalledUploadIsCutAndASiteHasOneUploadAtATime) {
  const v1::Task task = PollForTask(*stub_);
  ASSERT_FALSE(task.task_id().empty()) << coordinator_->output();
  const std::string model = DownloadModel(*stub_, task.model_digest());
  ASSERT_EQ(Sha256Hex(model), task.model_digest());
  // The header and the first chunk of an update, then nothing.
  grpc::ClientContext context;
  v1::UploadResponse response;
  auto writer = stub_->UploadResult(&context, &response);
  const std::vector<std::string_view> pieces = SplitIntoChunks(model, kChunkBytes);
  ASSERT_TRUE(writer->Write(ResultHeaderFor(task, task.round())));
  ASSERT_TRUE(writer->Write(ChunkMessage(pieces, 0, Sha256Hex(model), model.size())));
  ASSERT_TRUE(coordinator_->WaitFor("receiving the update of site-a", std::chrono::seconds(60)))
      << coordinator_->output();
  // A second upload of the same site, meanwhile, is refused at once.
  const grpc::Status second = Upload(*stub_, {ResultHeaderFor(task, task.round())});
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << second.error_message();
  // The stalled one holds its slot no longer than the limit.
  EXPECT_TRUE(coordinator_->WaitFor("cut the model upload of site site-a", std::chrono::seconds(60)))
      << coordinator_->output();
  EXPECT_FALSE(writer->Finish().ok());
}

}  // namespace
}  // namespace samverka
