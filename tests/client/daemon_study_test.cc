// tests/client/daemon_study_test.cc: the daemon's side of studies against an
// in-process fake coordinator over mutual TLS on loopback: what it
// registers, when it fetches a study, what it refuses before reading data,
// and that it trains a study its policy accepts.
#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "client/daemon.h"
#include "common/codec.h"
#include "common/wire.h"
#include "models/model.h"
#include "proto/federation.grpc.pb.h"
#include "tests/security/study_pki.h"

namespace samverka::client {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using security::testutil::SignFor;
using security::testutil::StudyPki;

// A coordinator that registers one site, hands out queued tasks, serves
// signed studies and one model, and records uploads. Thread-safe.
class FakeCoordinator final : public v1::Federation::Service {
 public:
  grpc::Status Register(grpc::ServerContext*, const v1::RegisterRequest* request,
                        v1::RegisterResponse* response) override {
    absl::MutexLock lock(&mutex_);
    datasets_.clear();
    for (const v1::DatasetInfo& d : request->datasets()) datasets_.push_back(d.name());
    response->set_federation_id("consortium");
    response->set_client_name("hospital-a");
    response->set_heartbeat_interval_seconds(1);
    return grpc::Status::OK;
  }
  grpc::Status PollTask(grpc::ServerContext*, const v1::PollTaskRequest* request,
                        v1::PollTaskResponse* response) override {
    absl::MutexLock lock(&mutex_);
    const auto has_task = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return !tasks_.empty(); };
    mutex_.AwaitWithTimeout(absl::Condition(&has_task),
                            absl::Seconds(std::min(request->wait_seconds(), 1.0)));
    if (!tasks_.empty()) {
      *response->mutable_task() = tasks_.front();
      tasks_.erase(tasks_.begin());
    }
    response->set_federation_done(say_done_);
    ++polls_;
    return grpc::Status::OK;
  }
  grpc::Status GetStudy(grpc::ServerContext*, const v1::GetStudyRequest* request,
                        v1::SignedStudy* response) override {
    absl::MutexLock lock(&mutex_);
    ++get_study_calls_;
    auto it = studies_.find(request->study_id());
    if (it == studies_.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such study");
    *response = it->second;
    return grpc::Status::OK;
  }
  grpc::Status DownloadModel(grpc::ServerContext*, const v1::DownloadModelRequest* request,
                             grpc::ServerWriter<v1::TensorChunk>* writer) override {
    absl::MutexLock lock(&mutex_);
    if (request->model_digest() != Sha256Hex(model_)) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such model");
    }
    v1::TensorChunk chunk;
    chunk.set_payload_digest(request->model_digest());
    chunk.set_total_chunks(1);
    chunk.set_total_bytes(model_.size());
    chunk.set_data(model_);
    writer->Write(chunk);
    return grpc::Status::OK;
  }
  grpc::Status DownloadModelFile(grpc::ServerContext*, const v1::DownloadModelFileRequest* request,
                                 grpc::ServerWriter<v1::TensorChunk>* writer) override {
    absl::MutexLock lock(&mutex_);
    ++model_file_calls_;
    auto it = model_files_.find(request->model_sha256());
    if (it == model_files_.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such file");
    v1::TensorChunk chunk;
    chunk.set_payload_digest(request->model_sha256());
    chunk.set_total_chunks(1);
    chunk.set_total_bytes(it->second.size());
    chunk.set_data(it->second);
    writer->Write(chunk);
    return grpc::Status::OK;
  }
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest*,
                         v1::HeartbeatResponse* response) override {
    response->set_task_active(true);
    return grpc::Status::OK;
  }
  grpc::Status UploadResult(grpc::ServerContext*, grpc::ServerReader<v1::UploadMessage>* reader,
                            v1::UploadResponse* response) override {
    v1::UploadMessage message;
    v1::ResultHeader header;
    uint64_t bytes = 0;
    while (reader->Read(&message)) {
      if (message.has_header()) header = message.header();
      if (message.has_chunk()) bytes += message.chunk().data().size();
    }
    absl::MutexLock lock(&mutex_);
    uploads_.push_back({header, bytes});
    response->set_accepted(true);
    return grpc::Status::OK;
  }

  struct Upload {
    v1::ResultHeader header;
    uint64_t bytes = 0;
  };
  void AddStudy(const v1::SignedStudy& study) {
    absl::MutexLock lock(&mutex_);
    studies_[study.study_id()] = study;
  }
  // Serves `bytes` as the model file of digest `sha256` (they may differ).
  void AddModelFile(const std::string& sha256, std::string bytes) {
    absl::MutexLock lock(&mutex_);
    model_files_[sha256] = std::move(bytes);
  }
  void SetModel(std::string model) {
    absl::MutexLock lock(&mutex_);
    model_ = std::move(model);
  }
  void Offer(const v1::Task& task) {
    absl::MutexLock lock(&mutex_);
    tasks_.push_back(task);
  }
  // The uploads once there are `n` of them (empty after 120 s).
  std::vector<Upload> WaitForUploads(size_t n) {
    absl::MutexLock lock(&mutex_);
    const auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return uploads_.size() >= n; };
    if (!mutex_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(120))) return {};
    return uploads_;
  }
  // Every poll answers federation_done = true (a coordinator of before).
  void SayDone() {
    absl::MutexLock lock(&mutex_);
    say_done_ = true;
  }
  // True once the site polled `n` times (false after 120 s).
  bool WaitForPolls(int n) {
    absl::MutexLock lock(&mutex_);
    const auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return polls_ >= n; };
    return mutex_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(120));
  }
  int get_study_calls() {
    absl::MutexLock lock(&mutex_);
    return get_study_calls_;
  }
  int model_file_calls() {
    absl::MutexLock lock(&mutex_);
    return model_file_calls_;
  }
  std::vector<std::string> datasets() {
    absl::MutexLock lock(&mutex_);
    return datasets_;
  }

 private:
  absl::Mutex mutex_;
  std::vector<v1::Task> tasks_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, v1::SignedStudy> studies_ ABSL_GUARDED_BY(mutex_);
  std::string model_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::string> model_files_ ABSL_GUARDED_BY(mutex_);
  std::vector<Upload> uploads_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::string> datasets_ ABSL_GUARDED_BY(mutex_);
  int get_study_calls_ ABSL_GUARDED_BY(mutex_) = 0;
  int polls_ ABSL_GUARDED_BY(mutex_) = 0;
  bool say_done_ ABSL_GUARDED_BY(mutex_) = false;
  int model_file_calls_ ABSL_GUARDED_BY(mutex_) = 0;
};

constexpr char kGoodManifest[] =
    "name = \"breast-logreg\"\ndataset = \"breast\"\nmodel = \"logreg\"\ninput_shape = [2]\n"
    "num_classes = 2\nrounds = 3\nlr = 0.1\nbatch_size = 4\nsecure_aggregation = false\n";

class DaemonStudyTest : public ::testing::Test {
 protected:
  DaemonStudyTest() : pki_("consortium"), operator_(pki_.Issue("research-office")) {
    dir_ = pki_.dir() / "site";
    fs::create_directories(dir_);
    absl::StatusOr<security::IssuedCertificate> coordinator =
        pki_.ca().Issue({"coordinator", security::Role::kCoordinator, {"127.0.0.1"}});
    EXPECT_TRUE(coordinator.ok()) << coordinator.status();
    absl::StatusOr<security::IssuedCertificate> site = pki_.ca().Issue({"hospital-a"});
    EXPECT_TRUE(site.ok()) << site.status();
    site_tls_ = {pki_.ca().ca_certificate_path(), site->certificate_path, site->key_path};
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        security::MakeServerCredentials(
            {pki_.ca().ca_certificate_path(), coordinator->certificate_path, coordinator->key_path},
            [](std::string_view) { return absl::OkStatus(); });
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *credentials, &port_);
    builder.RegisterService(&coordinator_);
    server_ = builder.BuildAndStart();
  }
  ~DaemonStudyTest() override {
    if (daemon_ != nullptr) daemon_->Stop();
    if (runner_.joinable()) runner_.join();
    if (server_ != nullptr) server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  }

  // Starts a daemon whose data set "breast" is `csv` (a file that need not
  // exist), with `policy`.
  void StartDaemon(const fs::path& csv, SitePolicy policy = {}) {
    ClientDaemonOptions options;
    options.coordinator = "127.0.0.1:" + std::to_string(port_);
    options.tls = site_tls_;
    options.datasets["breast"].spec = "csv:" + csv.string() + ":label";
    options.datasets["breast"].test_fraction = 0;
    options.poll_wait = absl::Seconds(1);
    options.max_backoff = absl::Seconds(1);
    options.policy = std::move(policy);
    options.state_dir = (dir_ / "state").string();
    absl::StatusOr<std::unique_ptr<ClientDaemon>> daemon = ClientDaemon::Create(std::move(options));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    runner_ = std::thread([this] { run_status_ = daemon_->Run(); });
  }

  // 16 rows of two features and a 0/1 label.
  fs::path WriteCsv() {
    const fs::path csv = dir_ / "breast.csv";
    std::ofstream out(csv);
    out << "a,b,label\n";
    for (int i = 0; i < 16; ++i) out << i * 0.1 << "," << (i % 3) * 0.5 << "," << (i % 2) << "\n";
    return csv;
  }

  // `manifest` signed by the operator, as the coordinator stores it.
  v1::SignedStudy Study(const std::string& manifest, const std::string& model_sha256 = "") {
    const security::StudyEnvelope envelope =
        security::NewStudyEnvelope("consortium", manifest, model_sha256);
    v1::SignedStudy study;
    study.set_study_id(security::StudyId(envelope));
    study.set_manifest(envelope.manifest);
    study.set_model_sha256(envelope.model_sha256);
    study.set_federation_id(envelope.federation_id);
    study.set_submitted_unix_ms(envelope.submitted_unix_ms);
    study.set_nonce(envelope.nonce);
    study.set_operator_certificate(operator_.certificate_pem);
    study.set_signature(SignFor(envelope, operator_));
    return study;
  }

  // A training task of `study` as its manifest (kGoodManifest's options) says.
  static v1::Task TrainTask(const v1::SignedStudy& study, const std::string& model,
                            const std::string& digest, int round = 1) {
    v1::Task task;
    task.set_task_id("round-" + std::to_string(round) + "-train-" + study.study_id());
    task.set_round(round);
    task.set_kind(v1::TASK_KIND_TRAIN);
    task.set_model_digest(digest);
    task.set_model(model);
    task.mutable_train()->set_learning_rate(0.1);
    task.mutable_train()->set_local_epochs(1);
    task.mutable_train()->set_batch_size(4);
    task.set_deadline_seconds(60);
    task.set_federation_id("consortium");
    task.set_cohort_size(3);
    task.set_study_id(study.study_id());
    return task;
  }

  StudyPki pki_;
  StudyPki::Holder operator_;
  fs::path dir_;
  security::TlsFiles site_tls_;
  FakeCoordinator coordinator_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<ClientDaemon> daemon_;
  std::thread runner_;
  absl::Status run_status_;
};

TEST_F(DaemonStudyTest, FederationDoneDoesNotStopTheDaemon) {
  // A standing federation runs study after study: the flag of a one-run
  // coordinator no longer ends the site's daemon.
  coordinator_.SayDone();
  const v1::SignedStudy study = Study(kGoodManifest);
  coordinator_.AddStudy(study);
  StartDaemon(dir_ / "no-such.csv");
  ASSERT_TRUE(coordinator_.WaitForPolls(3));
  // Still polling: a task offered now is answered (here refused, since it
  // names another model than the signed manifest).
  coordinator_.Offer(TrainTask(study, "cnn", std::string(64, '0')));
  const std::vector<FakeCoordinator::Upload> uploads = coordinator_.WaitForUploads(1);
  ASSERT_EQ(uploads.size(), 1u);
  EXPECT_THAT(uploads[0].header.failure_reason(), HasSubstr("the signed manifest says 'logreg'"));
}

TEST_F(DaemonStudyTest, AnAlteredStudyIsRefusedWithoutReadingAnyData) {
  v1::SignedStudy study = Study(kGoodManifest);
  // Altered at the coordinator after it was signed: a higher learning rate.
  study.set_manifest(std::string(kGoodManifest) + "momentum = 0.99\n");
  coordinator_.AddStudy(study);
  coordinator_.Offer(TrainTask(study, "logreg", std::string(64, '0'), 1));
  coordinator_.Offer(TrainTask(study, "logreg", std::string(64, '0'), 2));
  // The data set's file does not exist: reading it would be a different error.
  StartDaemon(dir_ / "no-such.csv");
  const std::vector<FakeCoordinator::Upload> uploads = coordinator_.WaitForUploads(2);
  ASSERT_EQ(uploads.size(), 2u);
  for (const auto& upload : uploads) {
    EXPECT_THAT(upload.header.failure_reason(),
                HasSubstr("refused study " + study.study_id() +
                          ": its id " + study.study_id() + " does not name its signed bytes"));
    EXPECT_EQ(upload.bytes, 0u);
  }
  // Fetched once, refused for good; registration named the data set only.
  EXPECT_EQ(coordinator_.get_study_calls(), 1);
  EXPECT_EQ(coordinator_.datasets(), std::vector<std::string>{"breast"});
}

TEST_F(DaemonStudyTest, TrainsAnAcceptedStudyAndRefusesTheOthersBeforeTheirFiles) {
  const fs::path csv = WriteCsv();
  absl::StatusOr<std::unique_ptr<models::Model>> logreg = models::CreateModel({"logreg", {2}, 2}, 1);
  ASSERT_TRUE(logreg.ok()) << logreg.status();
  ModelParameters global{(*logreg)->layout(), std::vector<float>(static_cast<size_t>((*logreg)->layout().num_elements()))};
  (*logreg)->GetParameters(global.values);
  const std::string encoded = EncodeParameters(global);
  coordinator_.SetModel(encoded);
  const std::string digest = Sha256Hex(encoded);

  const v1::SignedStudy good = Study(kGoodManifest);
  std::string lungs_manifest = kGoodManifest;
  lungs_manifest.replace(lungs_manifest.find("\"breast\""), 8, "\"lungs\"");
  const v1::SignedStudy lungs = Study(lungs_manifest);
  std::string file_manifest = kGoodManifest;
  file_manifest.replace(file_manifest.find("\"logreg\""), 8, "\"net.pt\"");
  const v1::SignedStudy scripted = Study(file_manifest, std::string(64, 'a'));
  for (const auto* study : {&good, &lungs, &scripted}) coordinator_.AddStudy(*study);
  coordinator_.Offer(TrainTask(lungs, "logreg", digest));
  coordinator_.Offer(TrainTask(scripted, "net.pt", digest));
  coordinator_.Offer(TrainTask(good, "logreg", digest));

  SitePolicy policy;
  policy.allowed_models = {"logreg"};
  StartDaemon(csv, policy);
  const std::vector<FakeCoordinator::Upload> uploads = coordinator_.WaitForUploads(3);
  ASSERT_EQ(uploads.size(), 3u);
  EXPECT_THAT(uploads[0].header.failure_reason(),
              HasSubstr("refused study " + lungs.study_id() +
                        ": it needs data set 'lungs', which this site does not name (it has: "
                        "breast)"));
  EXPECT_THAT(uploads[1].header.failure_reason(),
              HasSubstr("refused study " + scripted.study_id() + ": site policy: the study's "
                        "TorchScript model 'net.pt' (sha256 " + std::string(64, 'a') +
                        ") is not among this site's allowed_models"));
  // Refused before its file was fetched.
  EXPECT_EQ(coordinator_.model_file_calls(), 0);
  EXPECT_EQ(uploads[2].header.failure_reason(), "");
  EXPECT_EQ(uploads[2].header.num_samples(), 16);
  EXPECT_GT(uploads[2].bytes, 0u);
  EXPECT_EQ(uploads[2].header.model_digest(), digest);
}

TEST_F(DaemonStudyTest, ATorchScriptModelArrivesWithItsStudyAndIsCheckedByDigest) {
  const fs::path csv = WriteCsv();
  // The study's TorchScript file: the built-in logreg, scripted.
  absl::StatusOr<std::unique_ptr<models::Model>> logreg = models::CreateModel({"logreg", {2}, 2}, 1);
  ASSERT_TRUE(logreg.ok()) << logreg.status();
  const fs::path source = dir_ / "net.pt";
  ASSERT_TRUE((*logreg)->SaveTorchScript(source.string()).ok());
  absl::StatusOr<std::string> file = security::ReadFileToString(source.string());
  ASSERT_TRUE(file.ok());
  const std::string sha256 = Sha256Hex(*file);
  absl::StatusOr<std::unique_ptr<models::Model>> scripted =
      models::CreateModel({source.string(), {2}, 2}, 1);
  ASSERT_TRUE(scripted.ok()) << scripted.status();
  ModelParameters global{(*scripted)->layout(),
                         std::vector<float>(static_cast<size_t>((*scripted)->layout().num_elements()))};
  (*scripted)->GetParameters(global.values);
  const std::string encoded = EncodeParameters(global);
  coordinator_.SetModel(encoded);
  fs::remove(source);  // the site gets it from the coordinator only

  std::string manifest = kGoodManifest;
  manifest.replace(manifest.find("\"logreg\""), 8, "\"net.pt\"");
  const v1::SignedStudy study = Study(manifest, sha256);
  // A second study names a file whose bytes the coordinator swapped.
  const std::string swapped_sha(64, 'b');
  const v1::SignedStudy swapped = Study(manifest, swapped_sha);
  coordinator_.AddStudy(study);
  coordinator_.AddStudy(swapped);
  coordinator_.AddModelFile(sha256, *file);
  coordinator_.AddModelFile(swapped_sha, *file);
  coordinator_.Offer(TrainTask(swapped, "net.pt", Sha256Hex(encoded)));
  coordinator_.Offer(TrainTask(study, "net.pt", Sha256Hex(encoded)));
  SitePolicy policy;
  policy.allowed_models = {sha256, swapped_sha};
  StartDaemon(csv, policy);
  const std::vector<FakeCoordinator::Upload> uploads = coordinator_.WaitForUploads(2);
  ASSERT_EQ(uploads.size(), 2u);
  EXPECT_THAT(uploads[0].header.failure_reason(),
              HasSubstr("refused study " + swapped.study_id() +
                        ": the downloaded model file's SHA-256 is not the one signed"));
  EXPECT_FALSE(fs::exists(dir_ / "state" / "models" / (swapped_sha + ".pt")));
  EXPECT_EQ(uploads[1].header.failure_reason(), "");
  EXPECT_EQ(uploads[1].header.num_samples(), 16);
  EXPECT_GT(uploads[1].bytes, 0u);
  // Kept under its digest, for the study's next rounds and restarts.
  absl::StatusOr<std::string> kept =
      security::ReadFileToString((dir_ / "state" / "models" / (sha256 + ".pt")).string());
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(Sha256Hex(*kept), sha256);
}

TEST_F(DaemonStudyTest, AStudyTheDataSetDoesNotFitIsRefusedAndTheDaemonServesTheNext) {
  const fs::path csv = WriteCsv();
  absl::StatusOr<std::unique_ptr<models::Model>> logreg = models::CreateModel({"logreg", {2}, 2}, 1);
  ASSERT_TRUE(logreg.ok()) << logreg.status();
  ModelParameters global{(*logreg)->layout(),
                         std::vector<float>(static_cast<size_t>((*logreg)->layout().num_elements()))};
  (*logreg)->GetParameters(global.values);
  const std::string encoded = EncodeParameters(global);
  coordinator_.SetModel(encoded);
  // Three features per sample; the site's CSV has two.
  std::string wide = kGoodManifest;
  wide.replace(wide.find("[2]"), 3, "[3]");
  const v1::SignedStudy misfit = Study(wide);
  const v1::SignedStudy good = Study(kGoodManifest);
  coordinator_.AddStudy(misfit);
  coordinator_.AddStudy(good);
  coordinator_.Offer(TrainTask(misfit, "logreg", Sha256Hex(encoded), 1));
  coordinator_.Offer(TrainTask(misfit, "logreg", Sha256Hex(encoded), 2));
  coordinator_.Offer(TrainTask(good, "logreg", Sha256Hex(encoded), 1));
  StartDaemon(csv);
  const std::vector<FakeCoordinator::Upload> uploads = coordinator_.WaitForUploads(3);
  ASSERT_EQ(uploads.size(), 3u);
  for (int i : {0, 1}) {
    // The coordinator hears the reason without the file's name.
    EXPECT_THAT(uploads[i].header.failure_reason(),
                HasSubstr("refused study " + misfit.study_id() +
                          ": its data has 2 features per sample (shape [2]), but the "
                          "federation's model 'logreg' takes input_shape [3]"));
    EXPECT_THAT(uploads[i].header.failure_reason(), ::testing::Not(HasSubstr("breast.csv")));
  }
  EXPECT_EQ(uploads[2].header.failure_reason(), "");
  EXPECT_EQ(uploads[2].header.num_samples(), 16);
}

}  // namespace
}  // namespace samverka::client
